"""The built-ins' report lines: logs and metric lines that SageMaker's metric regexes match.

The regexes are the ones the service injects for the built-ins' objective metrics (SageMaker developer
guide, "Define Metrics" and each algorithm's "Tune a ... Model" page), e.g. the one for ``test:msd``.

    [MM/DD/YYYY HH:MM:SS INFO <thread>] message
    #metrics {"StartTime": ..., "EndTime": ..., "Dimensions": {...}, "Metrics": {...}}
    #quality_metric: host=algo-1, test msd <loss>=0.0640...
    #progress_metric: host=algo-1, completed 100.0 % of epochs
    #throughput_metric: host=algo-1, train throughput=54276.97 records/second
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Mapping, TextIO

from smlocal.logs import LOGGER_NAME


def stat(values: float | Mapping[str, float]) -> dict[str, float]:
    """A ``#metrics`` entry: ``{"sum", "count", "min", "max"}`` (a bare number counts once)."""
    if isinstance(values, Mapping):
        return dict(values)
    v = float(values)
    return {"sum": v, "count": 1, "min": v, "max": v}


@dataclass
class Reporter:
    """Writes one job's tagged lines. ``algorithm`` is the ``#metrics`` dimension value."""

    algorithm: str
    host: str = "algo-1"
    stream: TextIO | None = None

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(LOGGER_NAME)

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def metrics(self, metrics: Mapping[str, float | Mapping[str, float]], start: float, end: float | None = None,
                **dimensions: object) -> None:
        dims = {"Algorithm": self.algorithm, "Host": self.host, "Operation": "training", **dimensions}
        body = {"StartTime": start, "EndTime": time.time() if end is None else end, "Dimensions": dims,
                "Metrics": {name: stat(v) for name, v in metrics.items()}}
        out = self._out()
        out.write("#metrics " + json.dumps(body) + "\n\n")
        out.flush()

    def quality(self, split: str, name: str, value: float, kind: str = "loss", epoch: int | None = None) -> None:
        at = f"epoch={epoch}, " if epoch is not None else ""
        self.log.info(f"#quality_metric: host={self.host}, {at}{split} {name} <{kind}>={float(value)!r}")

    def score(self, split: str, name: str, value: float) -> None:
        """``#test_score (algo-1) : ('msd', 0.1)`` followed by the matching ``#quality_metric`` line."""
        self.log.info(f"#{split}_score ({self.host}) : ({name!r}, {float(value)!r})")

    def progress(self, percent: float, of: str = "epochs") -> None:
        self.log.info(f"#progress_metric: host={self.host}, completed {float(percent)} % of {of}")

    def throughput(self, records_per_second: float, split: str = "train") -> None:
        self.log.info(f"#throughput_metric: host={self.host}, {split} throughput={records_per_second} records/second")
