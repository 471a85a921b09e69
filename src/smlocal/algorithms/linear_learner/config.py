"""Linear learner hyperparameters: the schema and the resolution of ``auto`` values.

``SCHEMA`` holds every name the built-in accepts with its ``default-input.json`` string (the defaults
its training logs print; the names and valid values are those of the SageMaker developer guide page
"Linear Learner Hyperparameters", the SDK's ``LinearLearner`` estimator and SageMaker Spark). ``resolve``
turns the parsed values into an ``LLConfig`` with every data-independent ``auto`` decided; the ones that
need data (``positive_example_weight_mult`` = auto/balanced, the scaler's shift for sparse data) are
left to the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from smlocal.algorithms.common.hyperparameters import AUTO, Param, Schema, invalid
from smlocal.errors import CustomerError

BINARY = "binary_classifier"
MULTICLASS = "multiclass_classifier"
REGRESSOR = "regressor"
PREDICTOR_TYPES = (BINARY, MULTICLASS, REGRESSOR)

LOSSES = ("logistic", "squared_loss", "absolute_loss", "hinge_loss", "eps_insensitive_squared_loss",
          "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss", "softmax_loss")
# which losses each predictor type trains with (SageMaker developer guide, "Linear Learner Hyperparameters");
# the first is what auto means
LOSSES_FOR = {
    BINARY: ("logistic", "hinge_loss"),
    MULTICLASS: ("softmax_loss",),
    REGRESSOR: ("squared_loss", "absolute_loss", "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss",
                "quantile_loss", "huber_loss"),
}
CRITERIA = ("accuracy", "f_beta", "f1", "precision_at_target_recall", "recall_at_target_precision",
            "loss_function", "cross_entropy_loss")

# the concrete values behind "auto": the defaults the first (2017) developer guide listed before they became
# "auto", which match the hyperparameters a real binary-classifier training log prints for its given model
AUTO_VALUES = {
    "optimizer": "adam", "learning_rate": 0.1, "wd": 0.0001, "l1": 0.0, "momentum": 0.0, "beta_1": 0.9,
    "beta_2": 0.999, "bias_lr_mult": 10.0, "bias_wd_mult": 0.0, "lr_scheduler_step": 100,
    "lr_scheduler_factor": 0.99, "lr_scheduler_minimum_lr": 1e-5, "num_models": 32,
}


def _num(name, default, kind="float", lo=None, hi=None, lo_open=False, hi_open=False, auto=False, extra=()):
    return Param(name, kind, default, minimum=lo, maximum=hi, exclusive_minimum=lo_open,
                 exclusive_maximum=hi_open, auto=auto, extra=tuple(extra))


SCHEMA = Schema("linear-learner", [
    Param("predictor_type", "str", None, choices=PREDICTOR_TYPES),
    _num("num_classes", "1", "int", 1, 1_000_000),
    _num("feature_dim", "auto", "int", 1, auto=True),
    _num("mini_batch_size", "1000", "int", 1),
    _num("epochs", "15", "int", 1),
    Param("loss", "str", "auto", choices=LOSSES, auto=True),
    Param("optimizer", "str", "auto", choices=("sgd", "adam", "rmsprop"), auto=True),
    _num("learning_rate", "auto", lo=0, lo_open=True, auto=True),
    _num("wd", "auto", lo=0, auto=True),
    _num("l1", "auto", lo=0, auto=True),
    _num("momentum", "auto", lo=0, hi=1, hi_open=True, auto=True),
    _num("beta_1", "auto", lo=0, hi=1, hi_open=True, auto=True),
    _num("beta_2", "auto", lo=0, hi=1, hi_open=True, auto=True),
    _num("bias_lr_mult", "auto", lo=0, lo_open=True, auto=True),
    _num("bias_wd_mult", "auto", lo=0, auto=True),
    Param("use_lr_scheduler", "bool", "true"),
    _num("lr_scheduler_step", "auto", "int", 1, auto=True),
    _num("lr_scheduler_factor", "auto", lo=0, hi=1, lo_open=True, hi_open=True, auto=True),
    _num("lr_scheduler_minimum_lr", "auto", lo=0, lo_open=True, auto=True),
    Param("init_method", "str", "uniform", choices=("uniform", "normal")),
    _num("init_scale", "0.07", lo=0, lo_open=True),
    _num("init_sigma", "0.01", lo=0, lo_open=True),
    _num("init_bias", "0.0"),
    Param("use_bias", "bool", "true"),
    _num("num_models", "auto", "int", 1, auto=True),
    _num("num_calibration_samples", "10000000", "int", 1),
    Param("binary_classifier_model_selection_criteria", "str", "accuracy", choices=CRITERIA),
    _num("target_recall", "0.8", lo=0, hi=1, lo_open=True, hi_open=True),
    _num("target_precision", "0.8", lo=0, hi=1, lo_open=True, hi_open=True),
    _num("positive_example_weight_mult", "1.0", lo=0, lo_open=True, auto=True, extra=("balanced",)),
    Param("normalize_data", "bool", "true", auto=True),
    Param("normalize_label", "bool", "auto", auto=True),
    Param("unbias_data", "bool", "auto", auto=True),
    Param("unbias_label", "bool", "auto", auto=True),
    _num("num_point_for_scaler", "10000", "int", 1),
    _num("early_stopping_patience", "3", "int", 1),
    _num("early_stopping_tolerance", "0.001", lo=0, lo_open=True),
    _num("margin", "1.0", lo=0),
    _num("quantile", "0.5", lo=0, hi=1, lo_open=True, hi_open=True),
    _num("loss_insensitivity", "0.01", lo=0, lo_open=True),
    _num("huber_delta", "1.0", lo=0, lo_open=True),
    _num("accuracy_top_k", "3", "int", 1, 1_000_000),
    _num("f_beta", "1.0", lo=0, lo_open=True),
    Param("balance_multiclass_weights", "bool", "false"),
    # internal names of default-input.json
    Param("_kvstore", "str", "auto", auto=True),
    Param("_num_kv_servers", "str", "auto", auto=True),
    _num("_num_gpus", "auto", "int", 0, auto=True),
    Param("_log_level", "str", "info", choices=("debug", "info", "warning", "error", "critical")),
    Param("_enable_profiler", "bool", "false"),
    Param("_tuning_objective_metric", "str", ""),
])


@dataclass(frozen=True)
class LLConfig:
    """Every hyperparameter after ``auto`` resolution (those that need data stay ``"auto"``)."""

    predictor_type: str
    num_classes: int  # outputs per model: 1 for binary/regressor
    feature_dim: int | str
    mini_batch_size: int
    epochs: int
    loss: str
    optimizer: str
    learning_rate: float
    wd: float
    l1: float
    momentum: float
    beta_1: float
    beta_2: float
    bias_lr_mult: float
    bias_wd_mult: float
    use_lr_scheduler: bool
    lr_scheduler_step: int
    lr_scheduler_factor: float
    lr_scheduler_minimum_lr: float
    init_method: str
    init_scale: float
    init_sigma: float
    init_bias: float
    use_bias: bool
    num_models: int
    num_calibration_samples: int
    criteria: str
    target_recall: float
    target_precision: float
    positive_example_weight_mult: float | str  # a number, "auto" or "balanced"
    normalize_data: bool
    normalize_label: bool
    unbias_data: bool | str  # "auto": on for dense data when use_bias (decided once the data is seen)
    unbias_label: bool
    num_point_for_scaler: int
    early_stopping_patience: int
    early_stopping_tolerance: float
    margin: float
    quantile: float
    loss_insensitivity: float
    huber_delta: float
    accuracy_top_k: int
    f_beta: float
    balance_multiclass_weights: bool
    num_gpus: int | str
    log_level: str
    given: frozenset  # the names the user set explicitly

    @property
    def outputs(self) -> int:
        return self.num_classes if self.predictor_type == MULTICLASS else 1

    def is_given(self, name: str) -> bool:
        return name in self.given


def _auto(values: Mapping[str, Any], name: str) -> Any:
    value = values[name]
    return AUTO_VALUES[name] if value == AUTO else value


def resolve(given: Mapping[str, str]) -> LLConfig:
    """Validate ``hyperparameters.json`` (all strings) and resolve every data-independent ``auto``."""
    values = SCHEMA.parse(given)
    return LLConfig(**_problem(values, given), **_optimizer(values), **_initialization(values),
                    **_selection(values), **_scaling(values), **_loss_parameters(values),
                    num_gpus=values["_num_gpus"], log_level=values["_log_level"], given=frozenset(given))


def _problem(values: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """The predictor type, its outputs and its loss: checked against each other."""
    predictor = values["predictor_type"]
    num_classes = values["num_classes"]
    if predictor == MULTICLASS:
        if "num_classes" not in given:
            raise CustomerError("No value(s) were specified for 'num_classes' which are required hyperparameter(s) "
                                "when predictor_type is 'multiclass_classifier'")
        if num_classes < 3:
            raise invalid("num_classes", given["num_classes"],
                          "an integer from 3 to 1000000 when predictor_type is 'multiclass_classifier' "
                          "(use predictor_type 'binary_classifier' for two classes)")
    else:
        num_classes = 1
    loss = values["loss"]
    if loss == AUTO:
        loss = LOSSES_FOR[predictor][0]
    elif loss not in LOSSES_FOR[predictor]:
        allowed = ", ".join(f"'{x}'" for x in ("auto",) + LOSSES_FOR[predictor])
        raise invalid("loss", loss, f"one of the following: {allowed} when predictor_type is '{predictor}'")
    return {"predictor_type": predictor, "num_classes": num_classes, "feature_dim": values["feature_dim"],
            "mini_batch_size": values["mini_batch_size"], "epochs": values["epochs"], "loss": loss}


def _optimizer(values: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer and its learning-rate schedule, ``auto`` -> ``AUTO_VALUES``."""
    floats = ("learning_rate", "wd", "l1", "momentum", "beta_1", "beta_2", "bias_lr_mult", "bias_wd_mult")
    return {"optimizer": _auto(values, "optimizer"),
            **{name: float(_auto(values, name)) for name in floats},
            "use_lr_scheduler": values["use_lr_scheduler"],
            "lr_scheduler_step": int(_auto(values, "lr_scheduler_step")),
            "lr_scheduler_factor": float(_auto(values, "lr_scheduler_factor")),
            "lr_scheduler_minimum_lr": float(_auto(values, "lr_scheduler_minimum_lr"))}


def _initialization(values: Mapping[str, Any]) -> dict[str, Any]:
    return {"init_method": values["init_method"], "init_scale": float(values["init_scale"]),
            "init_sigma": float(values["init_sigma"]), "init_bias": float(values["init_bias"]),
            "use_bias": values["use_bias"]}


def _selection(values: Mapping[str, Any]) -> dict[str, Any]:
    """How many models train, how the best one is chosen and calibrated, and when training stops."""
    pew = values["positive_example_weight_mult"]
    return {"num_models": int(_auto(values, "num_models")),
            "num_calibration_samples": values["num_calibration_samples"],
            "criteria": values["binary_classifier_model_selection_criteria"],
            "target_recall": float(values["target_recall"]),
            "target_precision": float(values["target_precision"]),
            "positive_example_weight_mult": pew if isinstance(pew, str) else float(pew),
            "early_stopping_patience": values["early_stopping_patience"],
            "early_stopping_tolerance": float(values["early_stopping_tolerance"]),
            "balance_multiclass_weights": values["balance_multiclass_weights"]}


def _scaling(values: Mapping[str, Any]) -> dict[str, Any]:
    """The scaler's switches; ``unbias_data`` = auto needs the data and stays ``"auto"``."""
    is_reg = values["predictor_type"] == REGRESSOR
    normalize_data, normalize_label = values["normalize_data"], values["normalize_label"]
    unbias_label = values["unbias_label"]
    return {
        # normalize_data "auto" means the documented auto normalization, i.e. on
        "normalize_data": True if normalize_data == AUTO else normalize_data,
        # label scaling is for regression only; classification ignores it (SageMaker developer guide,
        # "Linear Learner Hyperparameters")
        "normalize_label": is_reg and (normalize_label is True or normalize_label == AUTO),
        "unbias_data": values["unbias_data"],
        "unbias_label": is_reg and (unbias_label is True or (unbias_label == AUTO and values["use_bias"])),
        "num_point_for_scaler": values["num_point_for_scaler"],
    }


def _loss_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """The losses' own parameters and those of the final metrics."""
    floats = ("margin", "quantile", "loss_insensitivity", "huber_delta", "f_beta")
    return {**{name: float(values[name]) for name in floats}, "accuracy_top_k": values["accuracy_top_k"]}


def parsed_values(given: Mapping[str, str]) -> dict[str, Any]:
    """The merged configuration as the built-in logs it (``Final configuration: {...}``)."""
    return {**SCHEMA.defaults(), **{k: str(v) for k, v in given.items()}}
