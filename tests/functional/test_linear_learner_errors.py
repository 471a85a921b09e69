"""Linear learner refusing bad jobs through ``SMLOCAL_ALGORITHM=linear-learner container/train``: invalid
hyperparameters, labels outside the predictor's range, unlabeled or NaN data, a missing train channel. Each
answers exit 2 and a ``Customer Error`` in ``/opt/ml/output/failure``, with no model written."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.sparse as sp

from tests.datasets import csv_bytes, linear_problem, sdk_recordio, sdk_sparse_recordio
from tests.helpers import assert_customer_error, channel, put_files, train_builtin

CSV = "text/csv"
FAST = {"mini_batch_size": "100", "num_models": "8", "epochs": "6"}
train = functools.partial(train_builtin, algorithm="linear-learner")


def _binary_files(base, labels=None, validation=None, test_dim=None):
    X, y = linear_problem("binary", 600, seed=11)
    put_files(base, "train", sdk_recordio(X, y if labels is None else labels))
    if validation is not None:
        put_files(base, "validation", sdk_recordio(X[:100], validation))
    if test_dim is not None:
        put_files(base, "test", sdk_recordio(np.ones((20, test_dim), np.float32), np.zeros(20, np.float32)))


@pytest.mark.parametrize("hps,fragments", [
    ({}, ["No value(s) were specified for 'predictor_type' which are required hyperparameter(s)"]),
    ({"predictor_type": "multiclass_classifier"}, ["No value(s) were specified for 'num_classes'"]),
    ({"predictor_type": "multiclass_classifier", "num_classes": "2"},
     ["The value '2' is not valid for the 'num_classes' hyperparameter"]),
    ({"predictor_type": "binary_classifier", "loss": "squared_loss"},
     ["The value 'squared_loss' is not valid for the 'loss' hyperparameter which accepts one of the following: "
      "'auto', 'logistic', 'hinge_loss'"]),
    ({"predictor_type": "binary_classifier", "mini_batch_size": "0"},
     ["The value '0' is not valid for the 'mini_batch_size' hyperparameter"]),
    ({"predictor_type": "binary_classifier", "use_bias": "maybe"},
     ["The value 'maybe' is not valid for the 'use_bias' hyperparameter"]),
    ({"predictor_type": "binary_classifier", "learnig_rate": "0.1"}, ["Did you mean 'learning_rate'?"]),
    ({"predictor_type": "binary_classifier", "feature_dim": "7"},
     ["Incorrect configuration or train dataset provided. The value of feature_dim hyperparameter '7' doesn't match "
      "train data dimensionality '5'."]),
])
def test_invalid_configuration(base, hps, fragments):
    _binary_files(base)
    assert_customer_error(train(base, hps, {"train": channel()}), *fragments)


def test_binary_labels_must_be_0_or_1(base):
    _binary_files(base, labels=np.arange(600, dtype=np.float32) % 3)
    result = train(base, {"predictor_type": "binary_classifier"}, {"train": channel()})
    assert_customer_error(result, "Label values of channel 'train' must be 0 or 1", "found 2")


def test_multiclass_labels_out_of_range_in_validation(base):
    X, y = linear_problem("multiclass", 600, seed=12)
    put_files(base, "train", sdk_recordio(X, y))
    put_files(base, "validation", sdk_recordio(X[:100], np.full(100, 5, np.float32)))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "3", **FAST},
                   {"train": channel(), "validation": channel()})
    assert_customer_error(result, "Label values of channel 'validation' must be integers from 0 to num_classes - 1 "
                                  "= 2", "found 5")


def test_unlabeled_train_data(base):
    X, _ = linear_problem("regression", 300)
    put_files(base, "train", csv_bytes(X))
    result = train(base, {"predictor_type": "regressor"}, {"train": channel(CSV + ";label_size=0")})
    assert_customer_error(result, "Labeled train data required with label size equal 1.")


def test_test_channel_with_other_dimensionality(base):
    _binary_files(base, test_dim=3)
    result = train(base, {"predictor_type": "binary_classifier", **FAST}, {"train": channel(), "test": channel()})
    assert_customer_error(result, "The value of feature_dim hyperparameter '5' doesn't match test data "
                                  "dimensionality '3'")


def test_missing_values(base):
    X, y = linear_problem("regression", 300)
    X[17, 2] = np.nan
    put_files(base, "train", csv_bytes(X, y))
    result = train(base, {"predictor_type": "regressor"}, {"train": channel(CSV)})
    assert_customer_error(result, "Please remove any missing (NaN) values in the input data.")


def test_infinite_label_in_recordio(base):
    X, y = linear_problem("multiclass", 300)
    y[40] = np.inf  # once "'list' argument must have no negative elements" from the class count
    put_files(base, "train", sdk_recordio(X, y))
    result = train(base, {"predictor_type": "multiclass_classifier", "num_classes": "3"}, {"train": channel()})
    assert_customer_error(result, "Channel 'train'", ", label: Found infinite values.")


def test_huge_sparse_feature_dim_is_refused_before_allocating(base):
    cols = np.arange(50, dtype=np.int64) * 7919
    X = sp.csr_matrix((np.ones(50, np.float32), (np.arange(50), cols)), shape=(50, 10**9))
    put_files(base, "train", sdk_sparse_recordio(X, (np.arange(50) % 2).astype(np.float32)))
    result = train(base, {"predictor_type": "binary_classifier", "feature_dim": str(10**9)}, {"train": channel()})
    assert_customer_error(result, "feature_dim=1000000000 with num_models=32 x 1 output(s) need about",
                          "GiB of memory, more than the", "Set feature_dim to the number of features")


def test_missing_train_channel(base):
    X, y = linear_problem("regression", 300)
    put_files(base, "validation", sdk_recordio(X, y))
    result = train(base, {"predictor_type": "regressor"}, {"validation": channel()})
    assert_customer_error(result, "train")
