"""smlocal: SageMaker-compatible built-in k-means and linear learner, container side and local runtime."""

__version__ = "0.1.0"


def sagemaker_session(url=None, **options):
    """A ``sagemaker.Session`` wired to a running ``smlocal api`` (``smlocal.api.session``); imported lazily."""
    from smlocal.api.session import sagemaker_session as make

    return make(url, **options)
