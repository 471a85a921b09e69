"""Script mode on the container side: a user's program from /opt/ml/code instead of a built-in."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap

import numpy as np
import requests

from tests.helpers import REPO, Server, run_container, write_config

EXAMPLE = REPO / "examples" / "sklearn"


def _csv_channel(base, name="train", rows=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 3))
    y = (X @ np.array([1.5, -2.0, 0.5]) > 0).astype(float)
    folder = base / "input" / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / "part-0.csv", np.column_stack([y, X]), delimiter=",", fmt="%.6f")


def test_sklearn_script_trains_with_hyperparameters(base):
    shutil.copytree(EXAMPLE, base / "code")
    _csv_channel(base)
    write_config(base, {"sagemaker_program": json.dumps("train.py"), "C": "0.5", "max_iter": "200"},
                 {"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    result = run_container("train", base)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (base / "model" / "model.joblib").is_file()
    assert "training accuracy:" in result.stdout
    assert "Invoking user script:" in result.stdout and "--C 0.5 --max_iter 200" in result.stdout
    assert result.failure is None


def test_submit_directory_tarball_and_program_env(base, tmp_path):
    import tarfile

    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(EXAMPLE / "train.py", arcname="train.py")
    _csv_channel(base)
    write_config(base, {"sagemaker_submit_directory": json.dumps(str(archive))},
                 {"train": {"ContentType": "text/csv"}})
    result = run_container("train", base, env={"SAGEMAKER_PROGRAM": "train.py"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (base / "code" / "train.py").is_file() and (base / "model" / "model.joblib").is_file()


def test_failing_script_reports_stderr_tail(base):
    (base / "code").mkdir()
    (base / "code" / "boom.py").write_text(textwrap.dedent("""
        import sys
        print("about to fail")
        print("the data had 3 columns, expected 4", file=sys.stderr)
        sys.exit(7)
    """))
    write_config(base, {"sagemaker_program": "boom.py"}, {})
    result = run_container("train", base)
    assert result.returncode != 0
    assert result.failure.startswith("ExecuteUserScriptError:\nExitCode 7\nErrorMessage \"")
    assert "the data had 3 columns, expected 4" in result.failure
    assert f"Command \"{sys.executable}" in result.failure
    assert "the data had 3 columns, expected 4" in result.stderr  # streamed through as well


def test_script_that_writes_its_own_failure_keeps_it(base):
    (base / "code").mkdir()
    (base / "code" / "own.py").write_text(textwrap.dedent("""
        import os, sys
        with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
            f.write("my own reason: labels missing")
        sys.exit(255)
    """))
    write_config(base, {"sagemaker_program": "own.py"}, {})
    result = run_container("train", base)
    assert result.returncode != 0
    assert result.failure == "my own reason: labels missing"


def test_missing_entry_point_is_a_customer_error(base):
    (base / "code").mkdir()
    write_config(base, {"sagemaker_program": "nope.py"}, {})
    result = run_container("train", base)
    assert result.returncode == 2
    assert "The entry point 'nope.py' was not found" in result.failure


def test_environment_seen_by_the_script(base):
    """Every toolkit variable, checked one by one for a 2-channel, 2-host job."""
    (base / "code").mkdir()
    (base / "code" / "dump_env.py").write_text(textwrap.dedent("""
        import json, os, sys
        env = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "env.json"), "w") as f:
            json.dump({"env": env, "argv": sys.argv[1:]}, f)
    """))
    for channel in ("train", "validation"):
        (base / "input" / "data" / channel).mkdir(parents=True)
    write_config(base, {"sagemaker_program": '"dump_env.py"', "sagemaker_region": '"us-west-2"',
                        "epochs": "3", "lr": "0.01", "layers": "[64, 32]", "optimizer": "adam"},
                 {"train": {"ContentType": "text/csv", "TrainingInputMode": "File"},
                  "validation": {"ContentType": "text/csv", "TrainingInputMode": "File"}},
                 hosts=("algo-1", "algo-2"), current="algo-2")
    result = run_container("train", base)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads((base / "output" / "data" / "env.json").read_text())
    env, argv = seen["env"], seen["argv"]
    b = str(base)
    assert argv == ["--epochs", "3", "--layers", "[64,32]", "--lr", "0.01", "--optimizer", "adam"]
    expected = {
        "SM_MODEL_DIR": f"{b}/model",
        "SM_CHANNELS": '["train","validation"]',
        "SM_CHANNEL_TRAIN": f"{b}/input/data/train",
        "SM_CHANNEL_VALIDATION": f"{b}/input/data/validation",
        "SM_HPS": '{"epochs":3,"layers":[64,32],"lr":0.01,"optimizer":"adam"}',
        "SM_HP_EPOCHS": "3",
        "SM_HP_LR": "0.01",
        "SM_HP_LAYERS": "[64,32]",
        "SM_HP_OPTIMIZER": "adam",
        "SM_CURRENT_HOST": "algo-2",
        "SM_HOSTS": '["algo-1","algo-2"]',
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_OUTPUT_DATA_DIR": f"{b}/output/data",
        "SM_OUTPUT_DIR": f"{b}/output",
        "SM_OUTPUT_INTERMEDIATE_DIR": f"{b}/output/intermediate",
        "SM_INPUT_DIR": f"{b}/input",
        "SM_INPUT_CONFIG_DIR": f"{b}/input/config",
        "SM_MODULE_NAME": "dump_env",
        "SM_MODULE_DIR": f"{b}/code",
        "SM_USER_ENTRY_POINT": "dump_env.py",
        "SM_USER_ARGS": '["--epochs","3","--layers","[64,32]","--lr","0.01","--optimizer","adam"]',
        "SM_FRAMEWORK_PARAMS": '{"sagemaker_program":"dump_env.py","sagemaker_region":"us-west-2"}',
        "SM_NUM_GPUS": "0",
    }
    for name, value in expected.items():
        assert env.get(name) == value, name
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"],
                                                     "network_interface_name": "eth0"}
    idc = json.loads(env["SM_INPUT_DATA_CONFIG"])
    assert set(idc) == {"train", "validation"} and idc["train"]["ContentType"] == "text/csv"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hyperparameters"] == {"epochs": 3, "layers": [64, 32], "lr": 0.01, "optimizer": "adam"}
    assert training_env["channel_input_dirs"] == {"train": f"{b}/input/data/train",
                                                  "validation": f"{b}/input/data/validation"}
    assert training_env["current_host"] == "algo-2"


def _train_example(base):
    shutil.copytree(EXAMPLE, base / "code")
    _csv_channel(base)
    write_config(base, {"sagemaker_program": "train.py"}, {"train": {"ContentType": "text/csv"}})
    assert run_container("train", base).returncode == 0


def test_serving_with_the_users_handlers(base):
    """inference.py in model/code: model_fn/input_fn/predict_fn/output_fn replace the built-in defaults."""
    _train_example(base)
    (base / "model" / "code").mkdir()
    shutil.copy(EXAMPLE / "inference.py", base / "model" / "code" / "inference.py")
    shutil.rmtree(base / "code")  # serving must find the script inside the model, as after model.tar.gz
    server = Server(base).wait_ready()
    try:
        ok = requests.post(server.url + "/invocations", data=b"3,-3,0\n-3,3,0\n",
                           headers={"Content-Type": "text/csv"}, timeout=30)
        assert ok.status_code == 200 and ok.headers["Content-Type"] == "application/json"
        probabilities = ok.json()["probabilities"]
        assert probabilities[0] > 0.9 and probabilities[1] < 0.1
        # an exception inside user code answers 500 with its message and the server keeps serving
        bad = requests.post(server.url + "/invocations", data=b'{"x": 1}',
                            headers={"Content-Type": "application/json"}, timeout=30)
        assert bad.status_code == 500
        assert "input_fn failed: ValueError: this model takes text/csv, not application/json" in bad.text
        again = requests.post(server.url + "/invocations", data=b"3,-3,0\n",
                              headers={"Content-Type": "text/csv"}, timeout=30)
        assert again.status_code == 200 and len(again.json()["probabilities"]) == 1
    finally:
        assert server.stop() == 0


def test_partial_handlers_fall_back_to_builtin_codecs(base):
    """Only model_fn and predict_fn: the request is decoded and the answer encoded by the built-in codecs."""
    _train_example(base)
    (base / "code" / "inference.py").write_text(textwrap.dedent("""
        import os, joblib
        def model_fn(model_dir):
            return joblib.load(os.path.join(model_dir, "model.joblib"))
        def predict_fn(data, model):
            return model.predict(data)
    """))
    server = Server(base).wait_ready()
    try:
        resp = requests.post(server.url + "/invocations", data=json.dumps({"instances": [{"features": [3, -3, 0]}]}),
                             headers={"Content-Type": "application/json"}, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"predictions": [1.0]}
        csv = requests.post(server.url + "/invocations", data=b"3,-3,0\n-3,3,0\n",
                            headers={"Content-Type": "text/csv", "Accept": "text/csv"}, timeout=30)
        assert csv.status_code == 200 and csv.text.split() == ["1.0", "0.0"]
    finally:
        server.stop()


def test_broken_model_fn_stops_serve_naming_the_script(base):
    (base / "code").mkdir()
    (base / "code" / "inference.py").write_text("def model_fn(model_dir):\n    raise IOError('no weights here')\n")
    result = run_container("serve", base, timeout=60)
    assert result.returncode == 2
    assert "model_fn in" in result.stdout and "inference.py could not load the model" in result.stdout
    assert "no weights here" in result.stdout
