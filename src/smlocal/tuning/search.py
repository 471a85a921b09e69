"""The search: one Optuna study per tuning job, its sampler and pruner chosen by the strategy.

| Strategy / early stopping | Optuna |
|---|---|
| Bayesian   | ``TPESampler`` (multivariate, constant liar so parallel jobs spread out) |
| Random     | ``RandomSampler`` |
| Grid       | ``GridSampler`` over the categorical values, every combination once |
| Hyperband  | ``RandomSampler`` + ``HyperbandPruner(MinResource, MaxResource)``, fed one value per epoch |
| TrainingJobEarlyStoppingType=Auto | ``MedianPruner``: stop a job whose intermediate objective is worse than the median of earlier jobs at the same step (the service's documented rule) |

``RandomSeed`` seeds the sampler, so the same request samples the same hyperparameters.
"""
from __future__ import annotations

from smlocal.errors import CustomerError
from smlocal.tuning.request import TuningRequest

INSTALL_HINT = "pip install 'smlocal[tune]'"
BAYESIAN_STARTUP_TRIALS = 5  # random trials before TPE models the results (Optuna's default is 10)


def optuna_module():
    """Optuna, imported when a tuning job runs (an extra, not a core dependency)."""
    try:
        import optuna
    except ImportError:
        raise CustomerError(f"Hyperparameter tuning needs Optuna: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def sampler(request: TuningRequest):
    optuna = optuna_module()
    seed = request.seed
    if request.strategy == "Bayesian":
        startup = min(BAYESIAN_STARTUP_TRIALS, max(1, request.max_jobs // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                          constant_liar=True)
    if request.strategy == "Grid":
        space = {r.name: list(r.values) for r in request.ranges}
        return _grid_sampler(optuna)(space, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _grid_sampler(optuna):
    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid, without its ``study.stop()`` once the grid is covered: that works only inside
        ``optimize()``, and the tuning loop already runs each combination once (MaxNumberOfTrainingJobs)."""

        def after_trial(self, study, trial, state, values) -> None:
            return None
    return GridSampler


def pruner(request: TuningRequest):
    optuna = optuna_module()
    if request.strategy == "Hyperband":
        least, most = request.hyperband
        return optuna.pruners.HyperbandPruner(min_resource=least, max_resource=most)
    if request.early_stopping == "Auto":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def create_study(request: TuningRequest, earlier: list[tuple[dict, float]] = ()):
    """The study, with ``earlier`` (params, objective) results added for a warm start."""
    optuna = optuna_module()
    direction = "minimize" if request.objective.type == "Minimize" else "maximize"
    study = optuna.create_study(direction=direction, sampler=sampler(request), pruner=pruner(request),
                                study_name=request.name)
    for params, value in earlier:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions(request), value=value))
    return study


def distributions(request: TuningRequest) -> dict:
    return {r.name: r.distribution() for r in request.ranges}
