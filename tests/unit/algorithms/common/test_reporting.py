"""Metric and log lines in the formats SageMaker's regexes parse."""
from __future__ import annotations

import io
import json
import logging
import re

from smlocal.algorithms.common.reporting import Reporter
from smlocal.logs import setup_logging

# the metric regexes of the built-ins' tuning metrics (SageMaker developer guide, "Tune a K-Means Model" and
# "Tune a Linear Learner Model")
TEST_MSD = re.compile(r"#quality_metric: host=\S+, test msd <loss>=(\S+)")
TRAIN_OBJECTIVE = re.compile(r"#quality_metric: host=\S+, epoch=\S+, train \S+_objective <loss>=(\S+)")
THROUGHPUT = re.compile(r"#throughput_metric: host=\S+, train throughput=(\S+) records/second")
PROGRESS = re.compile(r"#progress_metric: host=\S+, completed (\S+) %")
LINE = re.compile(r"^\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d INFO \d+\] ")


def test_lines_match_sagemaker_regexes():
    out = io.StringIO()
    setup_logging(stream=out)
    try:
        r = Reporter("AWS/KMeansWebscale", "algo-1", stream=out)
        r.quality("test", "msd", 0.0640490949)
        r.quality("train", "mse_objective", 1.5, epoch=3)
        r.throughput(54276.97)
        r.progress(100.0)
        r.score("test", "msd", 0.5)
        r.metrics({"Total Records Seen": 10, "epochs": {"sum": 1, "count": 1, "min": 1, "max": 1}}, 1.0, 2.0,
                  epoch=0)
    finally:
        logging.getLogger("smlocal").handlers.clear()
    text = out.getvalue()
    assert float(TEST_MSD.search(text).group(1)) == 0.0640490949
    assert float(TRAIN_OBJECTIVE.search(text).group(1)) == 1.5
    assert float(THROUGHPUT.search(text).group(1)) == 54276.97
    assert float(PROGRESS.search(text).group(1)) == 100.0
    assert "#test_score (algo-1) : ('msd', 0.5)" in text
    logged = [line for line in text.splitlines() if line.startswith("[")]
    assert logged and all(LINE.match(line) for line in logged)
    body = json.loads(text.split("#metrics ", 1)[1].splitlines()[0])
    assert body["Dimensions"] == {"Algorithm": "AWS/KMeansWebscale", "Host": "algo-1", "Operation": "training",
                                  "epoch": 0}
    assert body["Metrics"]["Total Records Seen"] == {"sum": 10.0, "count": 1, "min": 10.0, "max": 10.0}
