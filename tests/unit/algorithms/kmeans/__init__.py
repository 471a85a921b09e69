"""Unit tests of smlocal.algorithms.kmeans."""
