"""Automatic model tuning: SageMaker's hyperparameter tuning jobs, run locally with Optuna choosing the
hyperparameters of ordinary training jobs (``request`` parses the CreateHyperParameterTuningJob body,
``ranges`` maps ParameterRanges to Optuna distributions, ``metrics`` finds the objective in the logs,
``search`` builds the study, ``engine`` runs the jobs, ``summary`` answers Describe)."""
