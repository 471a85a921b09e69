"""Unit tests of smlocal.algorithms.cluster."""
