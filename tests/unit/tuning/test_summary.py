"""Counters, the best job, progress lines and the best-so-far curve, from trial entries."""
from __future__ import annotations

from smlocal.tuning.plot import best_so_far
from smlocal.tuning.request import Objective
from smlocal.tuning.summary import best_trial, job_summary, progress_line, status_counters


def _trial(number, status, value, objective="Succeeded", **extra):
    return {"Number": number, "TrainingJobName": f"t-{number:03d}-aaaaaaaa", "TrainingJobArn": "arn",
            "TunedHyperParameters": {"learning_rate": "0.0123456", "use_bias": "true"}, "TrainingJobStatus": status,
            "ObjectiveStatus": objective, "Value": value, "CreationTime": 1.0, **extra}


TRIALS = [_trial(1, "Completed", 0.5), _trial(2, "Failed", None, "Failed"), _trial(3, "Completed", 0.3),
          _trial(4, "Stopped", 0.1, EarlyStopped=True), _trial(5, "InProgress", None, "Pending")]


def test_counters_and_best():
    counters = status_counters(TRIALS)
    assert counters["TrainingJobStatusCounters"] == {"Completed": 2, "InProgress": 1, "RetryableError": 0,
                                                     "NonRetryableError": 1, "Stopped": 1}
    assert counters["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 1, "Failed": 1}
    minimize, maximize = Objective("Minimize", "m", ""), Objective("Maximize", "m", "")
    assert best_trial(TRIALS, minimize)["Number"] == 3  # the early-stopped job's model is not a finished one
    assert best_trial(TRIALS, maximize)["Number"] == 1
    summary = job_summary(TRIALS[2], minimize, "t", None)
    assert summary["FinalHyperParameterTuningJobObjectiveMetric"] == {"Type": "Minimize", "MetricName": "m",
                                                                      "Value": 0.3}


def test_progress_line_and_best_so_far():
    line = progress_line(TRIALS[2], 5, Objective("Minimize", "validation:objective_loss", ""), TRIALS[2])
    assert line.startswith("[  3/5] t-003-aaaaaaaa Completed")
    assert "learning_rate=0.01235 use_bias=true" in line and "validation:objective_loss=0.3" in line
    assert line.endswith("best 0.3 (job 3)")
    assert best_so_far([None, 0.5, 0.7, 0.2, None], minimize=True) == [None, 0.5, 0.5, 0.2, 0.2]
    assert best_so_far([0.5, 0.7], minimize=False) == [0.5, 0.7]
