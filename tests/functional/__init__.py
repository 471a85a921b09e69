"""Functional tests: the real entry points, runtime and CLI in-process or as subprocesses on temp dirs."""
