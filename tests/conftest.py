"""Fixtures for every test: an empty /opt/ml tree and the AWS built-ins' fixture artifacts."""
from __future__ import annotations

import signal

import pytest

# Helper modules' asserts get pytest's introspection too (it rewrites only test modules and conftests by
# default); registered before their first import.
pytest.register_assert_rewrite("tests.helpers", "tests.functional.conftest_s3")

from tests.helpers import FIXTURES  # noqa: E402 - after the registration above


def pytest_configure(config):
    """Tests stop the commands they start with SIGINT, as Ctrl-C would. A shell's background job (``cmd &``
    in a script) starts with SIGINT ignored, and an ignored signal stays ignored across exec, so every
    command the tests start would ignore it too. A handler in this process is reset to the default in
    each child instead."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def fixtures_dir():
    """The AWS built-ins' real artifacts beside the checkout (skipped in a user's clone without ../shared)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"{FIXTURES} is absent: the AWS fixtures live in ../shared beside the checkout")
    return FIXTURES


@pytest.fixture
def base(tmp_path):
    """An empty /opt/ml tree under a temporary directory."""
    root = tmp_path / "opt_ml"
    for sub in ("input/config", "input/data", "model", "output/data"):
        (root / sub).mkdir(parents=True)
    return root
