"""Validation of CreateHyperParameterTuningJob bodies before any job starts: each error names its field."""
from __future__ import annotations

import copy

import pytest

from smlocal.errors import CustomerError
from smlocal.tuning.request import parse_request, training_job_body

LL_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"


def _channel(name: str) -> dict:
    return {"ChannelName": name, "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"/data/{name}"}}}


def body(image=LL_IMAGE, metric="validation:objective_loss", strategy="Bayesian", static=None, ranges=None,
         max_jobs=4, parallel=2, channels=("train", "validation"), **config) -> dict:
    return {
        "HyperParameterTuningJobName": "tune-1",
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges or {"ContinuousParameterRanges": [
                {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.5", "ScalingType": "Logarithmic"}]},
            **config},
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/x",
            "StaticHyperParameters": static if static is not None else {"predictor_type": "binary_classifier",
                                                                        "epochs": "2"},
            "InputDataConfig": [_channel(c) for c in channels],
            "OutputDataConfig": {"S3OutputPath": "/out"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}},
    }


def _error(b: dict) -> str:
    with pytest.raises(CustomerError) as caught:
        parse_request(b)
    return str(caught.value)


def test_a_valid_request_parses_with_the_builtin_regex_and_tuning_metric():
    request = parse_request(body())
    assert request.algorithm == "linear-learner" and request.max_jobs == 4 and request.max_parallel == 2
    assert request.objective.regex.endswith(r"validation \S+_objective <loss>=(\S+)")
    job = training_job_body(request, "tune-1-001-abcdef12", {"learning_rate": "0.01"})
    assert job["HyperParameters"] == {"predictor_type": "binary_classifier", "epochs": "2",
                                      "learning_rate": "0.01", "_tuning_objective_metric": "validation:objective_loss"}
    assert job["ResourceConfig"]["InstanceCount"] == 1


@pytest.mark.parametrize("metric, fragment", [
    ("validation:msd", "is not an objective metric of linear-learner"),
    ("validation:mse", "predictor_type=binary_classifier does not report validation:mse"),
    ("test:objective_loss", "computed on the 'test' channel"),
])
def test_an_objective_the_algorithm_does_not_emit_is_refused(metric, fragment):
    message = _error(body(metric=metric))
    assert "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName" in message
    assert fragment in message


def test_kmeans_ssd_needs_eval_metrics():
    b = body(image=KMEANS_IMAGE, metric="test:ssd", static={"k": "3", "feature_dim": "4"}, channels=("train", "test"),
             ranges={"IntegerParameterRanges": [{"Name": "extra_center_factor", "MinValue": "2", "MaxValue": "8"}]})
    assert "eval_metrics" in _error(b)
    b["TrainingJobDefinition"]["StaticHyperParameters"]["eval_metrics"] = '["msd", "ssd"]'
    assert parse_request(b).objective.metric == "test:ssd"


@pytest.mark.parametrize("ranges, field, fragment", [
    ({"ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0", "MaxValue": "1",
                                     "ScalingType": "Linear"}]},
     "ContinuousParameterRanges[0].MinValue", "outside the valid values of 'learning_rate'"),
    ({"ContinuousParameterRanges": [{"Name": "momentum", "MinValue": "0.1", "MaxValue": "1.0",
                                     "ScalingType": "Linear"}]},
     "ContinuousParameterRanges[0].MaxValue", "outside the valid values of 'momentum'"),
    ({"IntegerParameterRanges": [{"Name": "mini_batch_size", "MinValue": "0", "MaxValue": "100"}]},
     "IntegerParameterRanges[0].MinValue", "outside the valid values"),
    ({"CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["adam", "lbfgs"]}]},
     "CategoricalParameterRanges[0].Values[1]", "outside the valid values of 'optimizer'"),
    ({"IntegerParameterRanges": [{"Name": "learning_rate", "MinValue": "1", "MaxValue": "3"}]},
     "IntegerParameterRanges[0].Name", "not an integer"),
    ({"ContinuousParameterRanges": [{"Name": "lerning_rate", "MinValue": "0.1", "MaxValue": "0.2"}]},
     "ContinuousParameterRanges[0].Name", "not a linear-learner hyperparameter"),
    ({"ContinuousParameterRanges": [{"Name": "wd", "MinValue": "0", "MaxValue": "0.1",
                                     "ScalingType": "Logarithmic"}]},
     "ContinuousParameterRanges[0].MinValue", "Logarithmic scaling needs MinValue > 0"),
])
def test_a_range_outside_the_hyperparameters_valid_values_is_refused(ranges, field, fragment):
    message = _error(body(ranges=ranges))
    assert f"HyperParameterTuningJobConfig.ParameterRanges.{field}" in message and fragment in message


def test_a_static_hyperparameter_that_is_also_tuned_is_refused():
    message = _error(body(static={"predictor_type": "binary_classifier", "learning_rate": "0.1"}))
    assert "TrainingJobDefinition.StaticHyperParameters.learning_rate" in message
    assert "either static or tuned" in message


def test_unknown_or_missing_static_hyperparameters_are_refused():
    assert "No value(s) were specified for 'predictor_type'" in _error(body(static={"epochs": "2"}))
    assert "'epoch' was unexpected" in _error(body(static={"predictor_type": "regressor", "epoch": "2"}))


def test_max_parallel_above_max_number_is_refused():
    message = _error(body(max_jobs=2, parallel=3))
    assert "ResourceLimits.MaxParallelTrainingJobs: 3 is more than MaxNumberOfTrainingJobs (2)" in message


def test_grid_takes_categorical_ranges_and_counts_the_combinations():
    assert "Grid strategy takes categorical ranges only" in _error(body(strategy="Grid"))
    grid = body(strategy="Grid", max_jobs=None, parallel=2, ranges={"CategoricalParameterRanges": [
        {"Name": "optimizer", "Values": ["adam", "sgd", "rmsprop"]}, {"Name": "use_bias", "Values": ["true", "false"]}]})
    del grid["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    assert parse_request(grid).max_jobs == 6


def test_hyperband_takes_max_resource_from_epochs_and_needs_early_stopping_off():
    request = parse_request(body(strategy="Hyperband"))
    assert request.hyperband == (1, 2)
    assert "set TrainingJobEarlyStoppingType to Off" in _error(body(strategy="Hyperband",
                                                                    TrainingJobEarlyStoppingType="Auto"))


def test_script_mode_needs_the_objective_among_metric_definitions():
    b = body(image="my-image:latest", metric="validation:acc", static={})
    message = _error(b)
    assert "AlgorithmSpecification.MetricDefinitions" in message and "'validation:acc'" in message
    b = copy.deepcopy(b)
    b["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "validation:acc", "Regex": "val_acc=([0-9.]+)"}]
    request = parse_request(b)
    assert request.algorithm is None and request.objective.regex == "val_acc=([0-9.]+)"
    assert "_tuning_objective_metric" not in training_job_body(request, "x", {})["HyperParameters"]


def test_transfer_learning_warm_start_is_refused_clearly():
    b = body()
    b["WarmStartConfig"] = {"WarmStartType": "TransferLearning",
                            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "earlier"}]}
    assert "WarmStartConfig.WarmStartType" in _error(b) and "IdenticalDataAndAlgorithm" in _error(b)
