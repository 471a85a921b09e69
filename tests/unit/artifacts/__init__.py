"""Unit tests of smlocal.artifacts."""
