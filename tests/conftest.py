from __future__ import annotations

import pytest

from tests.helpers import FIXTURES


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
