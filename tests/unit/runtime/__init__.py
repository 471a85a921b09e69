"""Unit tests of smlocal.runtime."""
