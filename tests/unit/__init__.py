"""Unit tests, one module per module of src/smlocal/."""
