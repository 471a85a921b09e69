"""Ranges and their scaling: what Optuna samples and the hyperparameter strings the jobs get."""
from __future__ import annotations

import math

import numpy as np
import pytest

from smlocal.errors import CustomerError
from smlocal.tuning.ranges import parse_range

optuna = pytest.importorskip("optuna")


def _samples(r, n=400):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask({r.name: r.distribution()})
        out.append(float(r.value(trial.params[r.name])))
        study.tell(trial, 0.0)
    return np.array(out)


def test_logarithmic_values_spread_their_logs_over_the_range():
    r = parse_range("Continuous", {"Name": "wd", "MinValue": "1e-7", "MaxValue": "1", "ScalingType": "Logarithmic"}, "p")
    values = _samples(r)
    assert values.min() >= 1e-7 and values.max() <= 1
    logs = np.log10(values)
    # evenly spread over [-7, 0]: each seventh of the log range holds about a seventh of the values
    counts = np.histogram(logs, bins=7, range=(-7, 0))[0]
    assert counts.min() > 0.5 * len(values) / 7
    assert (values < 1e-3).mean() > 0.4  # a linear scale would put about 0.1 % there


def test_linear_and_reverse_logarithmic_scaling():
    linear = _samples(parse_range("Continuous", {"Name": "x", "MinValue": "0", "MaxValue": "1",
                                                 "ScalingType": "Linear"}, "p"))
    assert abs(np.mean(linear) - 0.5) < 0.05
    reverse = _samples(parse_range("Continuous", {"Name": "beta_1", "MinValue": "0.0", "MaxValue": "0.999",
                                                  "ScalingType": "ReverseLogarithmic"}, "p"))
    assert reverse.min() >= 0 and reverse.max() <= 0.999
    assert (reverse > 0.9).mean() > 0.5  # values crowd towards 1: log(1 - x) is spread evenly
    counts = np.histogram(np.log10(1 - reverse), bins=3, range=(-3, 0))[0]
    assert counts.min() > 0.6 * len(reverse) / 3


def test_integer_ranges_give_integers_and_auto_picks_log_for_wide_positive_ranges():
    r = parse_range("Integer", {"Name": "mini_batch_size", "MinValue": "10", "MaxValue": "5000"}, "p")
    assert r.scaling == "Logarithmic"
    values = _samples(r, 200)
    assert all(v == int(v) and 10 <= v <= 5000 for v in values)
    assert parse_range("Integer", {"Name": "epochs", "MinValue": "1", "MaxValue": "10"}, "p").scaling == "Linear"
    assert parse_range("Continuous", {"Name": "x", "MinValue": "-1", "MaxValue": "1000"}, "p").scaling == "Linear"


def test_sampled_inverts_value_for_warm_start():
    r = parse_range("Continuous", {"Name": "beta_1", "MinValue": "0.5", "MaxValue": "0.99",
                                   "ScalingType": "ReverseLogarithmic"}, "p")
    assert math.isclose(float(r.value(r.sampled("0.9"))), 0.9)
    assert r.sampled("0.995") is None
    c = parse_range("Categorical", {"Name": "loss", "Values": ["logistic", "hinge_loss"]}, "p")
    assert c.sampled("hinge_loss") == "hinge_loss" and c.sampled("other") is None


@pytest.mark.parametrize("entry, fragment", [
    ({"Name": "x", "MinValue": "2", "MaxValue": "1"}, "MaxValue 1 is less than MinValue 2"),
    ({"Name": "x", "MinValue": "a", "MaxValue": "1"}, "p.MinValue: 'a' is not a number"),
    ({"Name": "x", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "ReverseLogarithmic"}, "MaxValue < 1"),
    ({"Name": "x", "MinValue": "1", "MaxValue": "2", "ScalingType": "Sideways"}, "p.ScalingType"),
])
def test_bad_ranges_name_the_field(entry, fragment):
    with pytest.raises(CustomerError, match="Invalid tuning job field") as caught:
        parse_range("Continuous", entry, "p")
    assert fragment in str(caught.value)
