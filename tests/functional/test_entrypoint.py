"""``container/train`` refusing what it cannot run: an unknown algorithm, broken config files."""
from __future__ import annotations

from tests.helpers import run_container, write_config


def test_unknown_algorithm_is_a_customer_error(base):
    write_config(base, {}, {})
    result = run_container("train", base, algorithm="xgboost")
    assert result.returncode == 2
    assert result.failure.startswith("Customer Error: Unknown algorithm 'xgboost' in SMLOCAL_ALGORITHM")
    assert "Docker entrypoint called with argument(s): train" in result.stdout


def test_broken_config_fails_cleanly(base):
    (base / "input" / "config" / "inputdataconfig.json").write_text("[1, 2]")
    result = run_container("train", base)
    assert result.returncode == 2
    assert "inputdataconfig.json must hold a JSON object" in result.failure
    assert not list((base / "model").iterdir())
