"""Unit tests of smlocal.algorithms.common."""
