"""Unit tests of smlocal.scriptmode."""
