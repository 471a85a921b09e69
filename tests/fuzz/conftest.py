"""Fuzz tests: Hypothesis keeps its files outside the repository."""
from __future__ import annotations

from tests.fuzz.harness import keep_storage_outside_repo


def pytest_configure(config):
    keep_storage_outside_repo()
