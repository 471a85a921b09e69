"""smlocal: SageMaker-compatible built-in k-means and linear learner, container side and local runtime."""

__version__ = "0.1.0"
