"""Unit tests of smlocal.algorithms."""
