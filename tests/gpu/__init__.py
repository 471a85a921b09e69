"""GPU tests: the CuPy array backend against the CPU one (skipped without CuPy)."""
