"""Linear learner hyperparameters: defaults as default-input.json, auto resolution, validation messages."""
from __future__ import annotations

import pytest

from smlocal.algorithms.linear_learner.config import AUTO_VALUES, SCHEMA, resolve
from smlocal.errors import CustomerError

# the built-in container's default-input.json, as its training logs print it
DEFAULTS = {
    "num_classes": "1", "feature_dim": "auto", "mini_batch_size": "1000", "epochs": "15", "loss": "auto",
    "optimizer": "auto", "learning_rate": "auto", "wd": "auto", "l1": "auto", "momentum": "auto", "beta_1": "auto",
    "beta_2": "auto", "bias_lr_mult": "auto", "bias_wd_mult": "auto", "use_lr_scheduler": "true",
    "lr_scheduler_step": "auto", "lr_scheduler_factor": "auto", "lr_scheduler_minimum_lr": "auto",
    "init_method": "uniform", "init_scale": "0.07", "init_sigma": "0.01", "init_bias": "0.0", "use_bias": "true",
    "num_models": "auto", "num_calibration_samples": "10000000",
    "binary_classifier_model_selection_criteria": "accuracy", "target_recall": "0.8", "target_precision": "0.8",
    "positive_example_weight_mult": "1.0", "normalize_data": "true", "normalize_label": "auto",
    "unbias_data": "auto", "unbias_label": "auto", "num_point_for_scaler": "10000", "early_stopping_patience": "3",
    "early_stopping_tolerance": "0.001", "margin": "1.0", "quantile": "0.5", "loss_insensitivity": "0.01",
    "huber_delta": "1.0", "accuracy_top_k": "3", "f_beta": "1.0", "balance_multiclass_weights": "false",
    "_kvstore": "auto", "_num_kv_servers": "auto", "_num_gpus": "auto", "_log_level": "info",
    "_enable_profiler": "false", "_tuning_objective_metric": "",
}


def test_defaults_are_default_input_json():
    assert SCHEMA.defaults() == DEFAULTS
    assert SCHEMA.params["predictor_type"].required


def test_auto_resolution_per_predictor_type():
    b = resolve({"predictor_type": "binary_classifier"})
    assert (b.loss, b.optimizer, b.learning_rate, b.wd, b.l1, b.num_models) == ("logistic", "adam", 0.1, 1e-4, 0.0, 32)
    assert (b.bias_lr_mult, b.bias_wd_mult, b.lr_scheduler_step) == (10.0, 0.0, 100)
    assert (b.normalize_label, b.unbias_label, b.unbias_data, b.outputs) == (False, False, "auto", 1)
    r = resolve({"predictor_type": "regressor"})
    assert (r.loss, r.normalize_label, r.unbias_label) == ("squared_loss", True, True)
    assert resolve({"predictor_type": "regressor", "use_bias": "false"}).unbias_label is False
    m = resolve({"predictor_type": "multiclass_classifier", "num_classes": "5"})
    assert (m.loss, m.outputs, m.num_classes) == ("softmax_loss", 5, 5)
    assert set(AUTO_VALUES) <= set(SCHEMA.params)


def test_sdk_booleans_and_special_values():
    cfg = resolve({"predictor_type": "binary_classifier", "use_bias": "False", "normalize_data": "True",
                   "positive_example_weight_mult": "balanced", "balance_multiclass_weights": "True"})
    assert cfg.use_bias is False and cfg.normalize_data is True
    assert cfg.positive_example_weight_mult == "balanced"
    assert resolve({"predictor_type": "binary_classifier", "positive_example_weight_mult": "auto"}
                   ).positive_example_weight_mult == "auto"
    assert resolve({"predictor_type": "binary_classifier", "positive_example_weight_mult": "2.5"}
                   ).positive_example_weight_mult == 2.5
    assert resolve({"predictor_type": "binary_classifier", "binary_classifier_model_selection_criteria": "f1"}
                   ).criteria == "f1"


@pytest.mark.parametrize("given,message", [
    ({}, "No value(s) were specified for 'predictor_type' which are required hyperparameter(s)"),
    ({"predictor_type": "classifier"}, "The value 'classifier' is not valid for the 'predictor_type' hyperparameter "
                                       "which accepts one of the following: 'binary_classifier', "
                                       "'multiclass_classifier', 'regressor'"),
    ({"predictor_type": "multiclass_classifier"}, "No value(s) were specified for 'num_classes'"),
    ({"predictor_type": "multiclass_classifier", "num_classes": "2"},
     "The value '2' is not valid for the 'num_classes' hyperparameter"),
    ({"predictor_type": "regressor", "loss": "logistic"},
     "The value 'logistic' is not valid for the 'loss' hyperparameter which accepts one of the following: 'auto', "
     "'squared_loss'"),
    ({"predictor_type": "binary_classifier", "loss": "softmax_loss"}, "'loss' hyperparameter"),
    ({"predictor_type": "regressor", "epochs": "0"}, "'epochs' hyperparameter which accepts an integer >= 1"),
    ({"predictor_type": "regressor", "learning_rate": "-1"}, "'learning_rate' hyperparameter"),
    ({"predictor_type": "regressor", "quantile": "1"}, "'quantile' hyperparameter"),
    ({"predictor_type": "regressor", "use_bias": "yes"}, "'use_bias' hyperparameter which accepts 'true', 'false'"),
    ({"predictor_type": "regressor", "optimizer": "adagrad"}, "'optimizer' hyperparameter"),
    ({"predictor_type": "regressor", "learning_rte": "0.1"}, "Did you mean 'learning_rate'?"),
])
def test_invalid_hyperparameters(given, message):
    with pytest.raises(CustomerError) as err:
        resolve(given)
    assert message in str(err.value)
