"""Built-in-style linear learner: many linear models trained in parallel, the best one selected and saved."""
from smlocal.algorithms.linear_learner.job import train

__all__ = ["train"]
