"""The built-ins' objective regexes against their own log lines, and the log follower."""
from __future__ import annotations

import re

from smlocal.tuning.metrics import BUILTIN_METRICS, LogFollower, values_in

LL_LOG = """\
[INFO] #quality_metric: host=algo-1, epoch=0, train binary_classification_cross_entropy_objective <loss>=0.53
[INFO] #quality_metric: host=algo-1, epoch=0, validation binary_classification_cross_entropy_objective <loss>=0.40
[INFO] #quality_metric: host=algo-1, epoch=1, validation binary_classification_cross_entropy_objective <loss>=0.28
[INFO] #quality_metric: host=algo-1, validation binary_classification_cross_entropy_objective <loss>=0.2795
[INFO] #quality_metric: host=algo-1, validation binary_f_1.000 <score>=0.95
[INFO] #quality_metric: host=algo-1, test mse <loss>=13.72
"""


def test_linear_learner_objectives_match_their_lines(tmp_path):
    log = tmp_path / "algo-1.log"
    log.write_text(LL_LOG)
    ll = BUILTIN_METRICS["linear-learner"]
    assert values_in([log], ll["validation:objective_loss"]) == [0.40, 0.28]  # one per epoch
    assert values_in([log], ll["validation:objective_loss:final"]) == [0.2795]
    assert values_in([log], ll["validation:binary_f_beta"]) == [0.95]
    assert values_in([log], ll["test:mse"]) == [13.72]
    assert values_in([log], ll["validation:mse"]) == []


def test_kmeans_objective(tmp_path):
    log = tmp_path / "algo-1.log"
    log.write_text("#quality_metric: host=algo-1, train msd <loss>=1.5\n"
                   "#quality_metric: host=algo-1, test msd <loss>=1.25\n")
    assert values_in([log], BUILTIN_METRICS["kmeans"]["test:msd"]) == [1.25]


def test_the_follower_reads_only_complete_new_lines(tmp_path):
    log = tmp_path / "algo-1.log"
    follower = LogFollower(re.compile(r"loss=(\S+)"))
    log.write_text("loss=1\nloss=2")
    assert follower.read([log, tmp_path / "missing.log"]) == 1
    with open(log, "a") as f:
        f.write("5\nloss=nan\nloss=3\n")
    assert follower.read([log]) == 2 and follower.values == [1.0, 25.0, 3.0]
    assert follower.final == 3.0
