"""The objective metric: the metric definitions the service injects for the built-ins, and its values in logs.

For the built-in algorithms the tuning service supplies the regexes itself (users give only the metric
name); these are the definitions seen in real tuning-job descriptions, and the objective names the
developer guide lists ("K-Means tuning metrics", "Linear Learner tuning metrics"). Script mode uses the
definition's own ``MetricDefinitions``. The objective is the last value its regex captures; every capture
before it is an intermediate value (one per epoch for linear learner's ``objective_loss``), which is what
Hyperband and the median stopping rule are fed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

_Q = r"#quality_metric: host=\S+, "

KMEANS = {
    "test:msd": _Q + r"test msd <loss>=(\S+)",
    "test:ssd": _Q + r"test ssd <loss>=(\S+)",
}

# linear learner: which documented objectives each predictor type reports
_LL_EMITS = {
    "binary_classifier": ("objective_loss", "binary_classification_accuracy", "binary_f_beta", "precision",
                          "recall", "roc_auc_score"),
    "multiclass_classifier": ("objective_loss", "multiclass_accuracy", "multiclass_top_k_accuracy",
                              "macro_f_beta", "macro_precision", "macro_recall", "dcg"),
    "regressor": ("objective_loss", "mse", "rmse", "absolute_loss"),
}
# the name in the log line, where it differs from the metric's name
_LL_LOGGED = {"binary_f_beta": r"binary_f_\S+", "macro_f_beta": r"macro_f_\S+",
              "multiclass_top_k_accuracy": r"multiclass_top_k_accuracy_\S+"}
_LL_LOSSES = ("objective_loss", "mse", "rmse", "absolute_loss")


def _linear_learner() -> dict[str, str]:
    definitions = {}
    for split in ("test", "validation"):
        for metric in sorted({m for names in _LL_EMITS.values() for m in names}):
            tag = "loss" if metric in _LL_LOSSES else "score"
            if metric == "objective_loss":
                # per epoch on validation (the last epoch's value is the objective); once on test
                where = "epoch=\\S+, " if split == "validation" else ""
                definitions[f"{split}:{metric}"] = _Q + where + split + r" \S+_objective <loss>=(\S+)"
            else:
                definitions[f"{split}:{metric}"] = _Q + f"{split} {_LL_LOGGED.get(metric, metric)} <{tag}>=(\\S+)"
    definitions["validation:objective_loss:final"] = _Q + r"validation \S+_objective <loss>=(\S+)"
    return definitions


BUILTIN_METRICS: dict[str, dict[str, str]] = {"kmeans": KMEANS, "linear-learner": _linear_learner()}


def emitted_by(algorithm: str, metric: str, hyperparameters: dict[str, str]) -> str | None:
    """Why ``algorithm`` would not report ``metric`` with these static hyperparameters, or None if it does."""
    split, _, name = metric.partition(":")
    if algorithm == "kmeans":
        wanted = name
        listed = hyperparameters.get("eval_metrics", '["msd"]')
        if wanted not in listed:
            return f"k-means reports test:{wanted} only when eval_metrics includes it (eval_metrics={listed})"
        return None
    predictor = hyperparameters.get("predictor_type")
    base = name.split(":")[0]
    if predictor in _LL_EMITS and base not in _LL_EMITS[predictor]:
        return (f"linear learner with predictor_type={predictor} does not report {metric}; it reports "
                f"{', '.join(f'{split}:{m}' for m in _LL_EMITS[predictor])}")
    return None


def parse_value(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class LogFollower:
    """Reads a job's log files as they grow and collects every value the objective's regex captures."""

    regex: re.Pattern
    values: list[float] = field(default_factory=list)
    _offsets: dict[str, int] = field(default_factory=dict)
    _partial: dict[str, str] = field(default_factory=dict)

    def read(self, paths, flush: bool = False) -> int:
        """Read what was added to ``paths`` since the last call; returns how many new values were found.
        ``flush``: the job has ended, so a last line without a newline counts too."""
        before = len(self.values)
        for path in paths:
            key = str(path)
            try:
                with open(path, "rb") as f:
                    f.seek(self._offsets.get(key, 0))
                    chunk = f.read()
            except OSError:
                continue
            self._offsets[key] = self._offsets.get(key, 0) + len(chunk)
            text = self._partial.pop(key, "") + chunk.decode("utf-8", errors="replace")
            lines = text.split("\n")
            if lines and lines[-1] and not flush:
                self._partial[key] = lines.pop()
            for line in lines:
                match = self.regex.search(line)
                value = parse_value(match.group(1)) if match and match.groups() else None
                if value is not None:
                    self.values.append(value)
        return len(self.values) - before

    @property
    def final(self) -> float | None:
        return self.values[-1] if self.values else None


def values_in(paths, regex: str) -> list[float]:
    """Every value ``regex`` captures in the files, in order (the last is the objective)."""
    follower = LogFollower(re.compile(regex))
    follower.read(paths, flush=True)
    return follower.values
