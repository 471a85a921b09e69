"""Unit tests of smlocal.data."""
