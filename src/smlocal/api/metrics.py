"""FinalMetricDataList: the last value of each metric the built-ins log, under SageMaker's metric names.

    #quality_metric: host=algo-1, test msd <loss>=0.0640  ->  {"MetricName": "test:msd", "Value": 0.064}
    #quality_metric: host=algo-1, epoch=3, validation objective_loss <loss>=0.5  ->  validation:objective_loss

These are the lines the built-in algorithms' predefined metric definitions match (SageMaker developer
guide, "K-Means Hyperparameters and metrics", "Linear Learner tuning metrics").
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

from smlocal.tuning.metrics import parse_value

_QUALITY = re.compile(r"#quality_metric: host=\S+, (?:epoch=\S+, )?(?:batch=\S+, )?(train|test|validation) "
                      r"(\S+) <\w+>=(\S+)")


def final_metrics(lines: Iterable[str], timestamp: float, definitions: Mapping[str, str] | None = None) -> list[dict]:
    """One entry per metric name, its last value, in order of first appearance: every quality line under
    its logged name, then (for a built-in) each of the algorithm's metric definitions under its own name
    (``validation:objective_loss`` is linear learner's last epoch, ``...:final`` the selected model's)."""
    lines = list(lines)
    values: dict[str, float] = {}
    for line in lines:
        match = _QUALITY.search(line)
        value = parse_value(match.group(3)) if match else None
        if value is not None:
            values[f"{match.group(1)}:{match.group(2)}"] = value
    for name, regex in (definitions or {}).items():
        pattern = re.compile(regex)
        for line in lines:
            match = pattern.search(line)
            value = parse_value(match.group(1)) if match else None
            if value is not None:
                values[name] = value
    return [{"MetricName": name, "Value": value, "Timestamp": timestamp} for name, value in values.items()]


def metrics_from_logs(paths: Iterable[str | Path], timestamp: float,
                      definitions: Mapping[str, str] | None = None) -> list[dict]:
    lines: list[str] = []
    for path in paths:
        try:
            lines += Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return final_metrics(lines, timestamp, definitions)
