"""Unit tests of smlocal.serving."""
