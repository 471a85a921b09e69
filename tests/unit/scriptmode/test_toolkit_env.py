"""The user script's environment: values decoded and encoded as the training toolkit does, and every SM_* name."""
from __future__ import annotations

import json

import pytest

from smlocal.environment import load_training_env
from smlocal.scriptmode.toolkit_env import (decode_value, program_name, split_hyperparameters, to_cmd_args,
                                           toolkit_environment)
from tests.helpers import channel, write_config


@pytest.mark.parametrize("raw, value", [('"train.py"', "train.py"), ("3", 3), ("0.5", 0.5), ("true", True),
                                        ('{"a": [1, 2]}', {"a": [1, 2]}), ("train.py", "train.py"), ("", "")])
def test_decode_value(raw, value):
    assert decode_value(raw) == value


def test_program_name_from_the_environment_before_the_hyperparameter():
    hps = {"sagemaker_program": '"train.py"'}
    assert program_name(hps, {}) == "train.py"
    assert program_name(hps, {"SAGEMAKER_PROGRAM": "other.py"}) == "other.py"
    assert program_name({"sagemaker_program": "plain.py"}, {"SAGEMAKER_PROGRAM": ""}) == "plain.py"
    assert program_name({"k": "3"}, {}) is None


def test_split_hyperparameters_decodes_and_separates_the_sagemaker_ones():
    user, framework = split_hyperparameters({"epochs": "3", "lr": "0.1", "name": "x",
                                             "sagemaker_program": '"train.py"', "sagemaker_region": '"eu"'})
    assert user == {"epochs": 3, "lr": 0.1, "name": "x"}
    assert framework == {"sagemaker_program": "train.py", "sagemaker_region": "eu"}


def test_cmd_args_sorted_by_name_with_compact_json():
    assert to_cmd_args({"lr": 0.1, "epochs": 3, "layers": [64, 32], "opts": {"b": 1, "a": None}, "tag": "v1",
                        "none": None}) == [
        "--epochs", "3", "--layers", "[64,32]", "--lr", "0.1", "--none", "", "--opts", '{"a":null,"b":1}',
        "--tag", "v1"]


def test_toolkit_environment(base):
    write_config(base, {"epochs": "3", "sagemaker_program": '"train.py"'},
                 {"train": channel("text/csv"), "validation-set": channel(mode="Pipe")},
                 hosts=("algo-1", "algo-2"), current="algo-2")
    env = load_training_env(base)
    sm = toolkit_environment(env, "train.py", "/opt/ml/code", num_gpus=0, num_cpus=4)
    assert sm["SM_MODEL_DIR"] == str(base / "model")
    assert sm["SM_CHANNELS"] == '["train","validation-set"]'
    assert sm["SM_CHANNEL_TRAIN"] == str(base / "input" / "data" / "train")
    assert sm["SM_CHANNEL_VALIDATION_SET"] == str(base / "input" / "data" / "validation-set")
    assert sm["SM_HPS"] == '{"epochs":3}' and sm["SM_HP_EPOCHS"] == "3" and "SM_HP_SAGEMAKER_PROGRAM" not in sm
    assert sm["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_program":"train.py"}'
    assert (sm["SM_CURRENT_HOST"], sm["SM_HOSTS"]) == ("algo-2", '["algo-1","algo-2"]')
    assert (sm["SM_NUM_GPUS"], sm["SM_NUM_CPUS"], sm["SM_LOG_LEVEL"]) == ("0", "4", "20")
    assert (sm["SM_MODULE_NAME"], sm["SM_MODULE_DIR"], sm["SM_USER_ENTRY_POINT"]) == ("train", "/opt/ml/code",
                                                                                      "train.py")
    assert sm["SM_USER_ARGS"] == '["--epochs","3"]'
    assert sm["SM_OUTPUT_DATA_DIR"] == str(base / "output" / "data")
    assert sm["SM_OUTPUT_INTERMEDIATE_DIR"] == str(base / "output" / "intermediate")
    assert sm["SM_INPUT_CONFIG_DIR"] == str(base / "input" / "config")
    assert json.loads(sm["SM_INPUT_DATA_CONFIG"])["validation-set"]["TrainingInputMode"] == "Pipe"
    assert json.loads(sm["SM_RESOURCE_CONFIG"])["current_host"] == "algo-2"
    training_env = json.loads(sm["SM_TRAINING_ENV"])
    assert training_env["channel_input_dirs"] == {"train": sm["SM_CHANNEL_TRAIN"],
                                                  "validation-set": sm["SM_CHANNEL_VALIDATION_SET"]}
    assert training_env["hyperparameters"] == {"epochs": 3}
    assert training_env["additional_framework_parameters"] == {"sagemaker_program": "train.py"}
    assert all(isinstance(v, str) for v in sm.values())
