"""The runtime with a minimal SageMaker-contract program (tests/functional/contract_stub/stub.py), so the
runtime is tested on its own: sharding over 2 hosts in File and Pipe mode, gzip and RecordIO wrapping,
failures, MaxRuntimeInSeconds, Ctrl-C, endpoints and batch transform. Process backend, real FIFOs,
real HTTP on loopback."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from smlocal.data.recordio import frame
from smlocal.errors import CustomerError
from smlocal.runtime.endpoint import Endpoint
from smlocal.runtime.jobs import run_training
from smlocal.runtime.jobspec import parse_job
from smlocal.runtime.plan import DataObject, PipeFeed
from smlocal.runtime.process import ProcessBackend
from smlocal.runtime.progress import Display
from smlocal.runtime.records import read_record
from smlocal.runtime.transform import resolve_params, run_transform
from tests.helpers import REPO, job_channel, training_job

STUB = Path(__file__).parent / "contract_stub" / "stub.py"
PROGRAM = [sys.executable, str(STUB)]


@pytest.fixture
def backend():
    return ProcessBackend(PROGRAM)


def _data(root: Path, n: int, gz: bool = False) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        text = "".join(f"{i},{j}\n" for j in range(i + 2)).encode()
        (root / f"part-{i}.csv{'.gz' if gz else ''}").write_bytes(gzip.compress(text) if gz else text)
    return root


def _job(tmp_path, channels, hps=None, name="stub-job", **options):
    """The job spec of a stub run, its output under ``tmp_path/out``."""
    return parse_job(training_job(name, channels, tmp_path / "out", image="stub:latest", hps=hps,
                                  instance_type="local", **options))


def _reports(tar_path):
    with tarfile.open(tar_path) as tar:
        return {m.name: json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()}


def test_two_hosts_sharded_file_and_pipe(tmp_path, backend):
    train = _data(tmp_path / "train", 5)
    test = _data(tmp_path / "test", 4, gz=True)
    spec = _job(tmp_path, [
        job_channel("train", str(train), "ShardedByS3Key", ContentType="text/csv"),
        job_channel("test", str(test), "ShardedByS3Key", InputMode="Pipe", CompressionType="Gzip",
                    RecordWrapperType="RecordIO", ShuffleConfig={"Seed": 3}),
    ], hps={"epochs": "2"}, count=2)
    result = run_training(spec, backend, Display(live=False, stream=io.StringIO()))
    assert result.status == "Completed", result.failure_reason
    assert result.exit_code == 0 and result.record["HostExitCodes"] == {"algo-1": 0, "algo-2": 0}
    models = _reports(result.plan.model_tar)
    assert sorted(models) == ["model_algo-1", "model_algo-2"]
    assert sorted(_reports(result.plan.output_tar)) == ["report-algo-1.json", "report-algo-2.json"]
    all_files = sorted(p.name for p in train.iterdir())
    test_objects = tuple(DataObject(p.name, str(p)) for p in sorted(test.iterdir()))
    seen_train = []
    for index, host in enumerate(("algo-1", "algo-2")):
        report = models[f"model_{host}"]
        assert report["resourceconfig"]["current_host"] == host
        assert report["inputdataconfig"]["test"]["TrainingInputMode"] == "Pipe"
        assert report["env"]["TRAINING_JOB_NAME"] == "stub-job" and report["env"]["DMLC_PS_ROOT_URI"] == "127.0.0.1"
        files = report["channels"]["train"]["files"]
        assert files == all_files[index::2]  # this host's shard, nothing else
        seen_train += files
        feed = PipeFeed("test", "-", test_objects, host_index=index, host_count=2, sharded=True, shuffle_seed=3)
        for epoch, got in enumerate(report["channels"]["test"]["epochs"]):
            expected = b"".join(frame(gzip.decompress(Path(o.path).read_bytes())) for o in feed.objects_for_epoch(epoch))
            assert got["sha256"] == hashlib.sha256(expected).hexdigest() and got["bytes"] == len(expected)
    assert sorted(seen_train) == all_files
    assert not result.plan.work_dir.exists()  # completed: the hosts' trees are cleaned up
    assert read_record(result.plan.job_dir)["TrainingJobStatus"] == "Completed"


def test_failure_reason_and_describe(tmp_path, backend):
    data = _data(tmp_path / "train", 1)
    reason = "The value 'x' is not valid for the 'k' hyperparameter. " + "y" * 2000
    result = run_training(_job(tmp_path, [job_channel("train", str(data))], hps={"fail": reason}), backend,
                          Display(live=False, stream=io.StringIO()))
    assert result.status == "Failed" and result.exit_code == 2
    assert result.failure_reason == ("Customer Error: " + reason)[:1024]
    record = read_record(tmp_path / "out" / "stub-job")
    assert record["FailureReason"] == result.failure_reason and record["ExitCode"] == 2
    assert Path(record["WorkDirectory"]).is_dir()  # kept for inspection
    cli = subprocess.run([sys.executable, "-m", "smlocal", "describe", "stub-job", "--output",
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO)
    assert cli.returncode == 0 and "TrainingJobStatus: Failed" in cli.stdout
    assert "FailureReason: Customer Error: The value 'x'" in cli.stdout
    with pytest.raises(CustomerError, match="already exists"):  # names are unique, like SageMaker's
        run_training(_job(tmp_path, [job_channel("train", str(data))]), backend)


def test_a_failed_job_or_one_stopped_before_saving_has_no_model_artifact(tmp_path, backend):
    """SageMaker gives a failed job no ModelArtifacts, and a stopped one only what its algorithm saved
    in the grace period after SIGTERM; output.tar.gz is kept either way (it explains the failure)."""
    data = _data(tmp_path / "train", 1)
    stop_soon = {"StoppingCondition": {"MaxRuntimeInSeconds": 1}}
    results = [run_training(_job(tmp_path, [job_channel("train", str(data))], hps=hps, name=name, **options),
                            backend, Display(live=False, stream=io.StringIO()))
               for name, hps, options in [("failed", {"fail": "bad k"}, {}), ("stopped", {"sleep": "60"}, stop_soon),
                                          ("saved", {"sleep": "60", "save_on_sigterm": "true"}, stop_soon)]]
    failed, stopped, saved = results
    assert [r.status for r in results] == ["Failed", "Stopped", "Stopped"]
    for result in (failed, stopped):
        assert not result.plan.model_tar.exists() and result.plan.output_tar.is_file()
        assert "ModelArtifacts" not in read_record(result.plan.record_file)
    cli = subprocess.run([sys.executable, "-m", "smlocal", "describe", str(failed.plan.record_file.parent)],
                         capture_output=True, text=True, cwd=REPO)
    assert cli.returncode == 0 and "TrainingJobStatus: Failed" in cli.stdout and "ModelArtifacts" not in cli.stdout
    assert read_record(saved.plan.record_file)["ModelArtifacts"]["S3ModelArtifacts"] == str(saved.plan.model_tar)
    with tarfile.open(saved.plan.model_tar) as tar:
        assert tar.extractfile("model_algo-1").read() == b"saved on stop"


def test_exit_without_failure_file(tmp_path, backend):
    data = _data(tmp_path / "train", 1)
    result = run_training(_job(tmp_path, [job_channel("train", str(data))], hps={"exit_code": "5"}), backend,
                          Display(live=False, stream=io.StringIO()))
    assert result.status == "Failed" and result.exit_code == 5
    assert "exited with code 5" in result.failure_reason and "algo-1.log" in result.failure_reason
    assert result.failure_reason.startswith("Algorithm Error: algo-1 exited with code 5")  # the container's prefix


def test_max_runtime_stops_the_job(tmp_path, backend):
    data = _data(tmp_path / "train", 1)
    spec = _job(tmp_path, [job_channel("train", str(data))], hps={"sleep": "60"},
                StoppingCondition={"MaxRuntimeInSeconds": 1})
    t0 = time.monotonic()
    result = run_training(spec, backend, Display(live=False, stream=io.StringIO()))
    assert time.monotonic() - t0 < 20
    assert (result.status, result.secondary_status, result.exit_code) == ("Stopped", "MaxRuntimeExceeded", 124)
    assert "MaxRuntimeInSeconds=1" in result.failure_reason


def test_a_stop_event_from_another_thread_stops_the_job(tmp_path, backend):
    """StopTrainingJob's way in: the runtime itself stops the hosts (SIGTERM) and reports Stopped."""
    data = _data(tmp_path / "train", 1)
    spec = _job(tmp_path, [job_channel("train", str(data))], hps={"sleep": "60"})
    stop, out = threading.Event(), io.StringIO()
    threading.Timer(1.0, stop.set).start()
    t0 = time.monotonic()
    result = run_training(spec, backend, Display(live=False, stream=out), stop=stop)
    assert time.monotonic() - t0 < 20
    assert (result.status, result.secondary_status) == ("Stopped", "Stopped"), result.failure_reason
    assert result.record["HostExitCodes"]["algo-1"] == -signal.SIGTERM and "stop requested" in out.getvalue()
    assert read_record(spec.job_dir)["TrainingJobStatus"] == "Stopped"


def test_sigterm_ignored_is_killed_after_grace(tmp_path, backend):
    data = _data(tmp_path / "train", 1)
    spec = _job(tmp_path, [job_channel("train", str(data), InputMode="Pipe")],
                hps={"sleep": "60", "ignore_sigterm": "true", "epochs": "1"},
                StoppingCondition={"MaxRuntimeInSeconds": 1})
    t0 = time.monotonic()
    result = run_training(spec, backend, Display(live=False, stream=io.StringIO()), stop_grace=1.0)
    assert time.monotonic() - t0 < 20
    assert result.status == "Stopped" and result.record["HostExitCodes"]["algo-1"] == -signal.SIGKILL
    assert not [p for p in (result.plan.work_dir / "algo-1" / "input" / "data").iterdir() if p.is_fifo()]


def test_ctrl_c_stops_processes_and_feeders(tmp_path):
    data = _data(tmp_path / "train", 2)
    cmd = [sys.executable, "-m", "smlocal", "train", "--image", "stub:1", "--backend", "process",
           "--entrypoint", f"{sys.executable} {STUB}", "--channel", f"train={data}", "--channel", f"extra={data}",
           "--input-mode", "Pipe", "--hp", "sleep=60", "--output", str(tmp_path / "out"), "--job-name", "cc"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # wait until the stub has read its pipes and sleeps
        lines.append(line)
        if "sleeping" in line:
            break
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "".join(lines)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(lines) + out
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    record = read_record(tmp_path / "out" / "cc")
    assert (record["TrainingJobStatus"], record["SecondaryStatus"]) == ("Stopped", "Stopped")
    data_dir = tmp_path / "out" / "cc" / "hosts" / "algo-1" / "input" / "data"
    assert not [p for p in data_dir.iterdir() if p.is_fifo()]  # no FIFO (and so no writer) left


def test_a_sigkilled_train_is_reported_failed_by_describe(tmp_path):
    """``kill -9`` of ``smlocal train`` leaves nobody to finish the record: describe sees the runner gone."""
    data = _data(tmp_path / "train", 1)
    cmd = [sys.executable, "-m", "smlocal", "train", "--image", "stub:1", "--backend", "process",
           "--entrypoint", f"{sys.executable} {STUB}", "--channel", f"train={data}", "--hp", "sleep=60",
           "--output", str(tmp_path / "out"), "--job-name", "killed"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "sleeping" in line:
            break
    children = psutil.Process(proc.pid).children(recursive=True)
    describe = [sys.executable, "-m", "smlocal", "describe", "killed", "--output", str(tmp_path / "out")]
    try:
        running = subprocess.run(describe, capture_output=True, text=True, cwd=REPO, timeout=60)
        assert "TrainingJobStatus: InProgress" in running.stdout, "".join(lines) + running.stdout
        proc.kill()
        proc.wait(10)
        cli = subprocess.run(describe, capture_output=True, text=True, cwd=REPO, timeout=60)
    finally:
        for child in children:  # the hosts run in their own session: nobody else stops them now
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(children, timeout=10)
    assert cli.returncode == 0 and "TrainingJobStatus: Failed" in cli.stdout, cli.stdout + cli.stderr
    assert f"PID {proc.pid}" in cli.stdout and "algo-1.log" in cli.stdout


def _model_tar(tmp_path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_algo-1").write_bytes(b"weights")
    tar = tmp_path / "model.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(model / "model_algo-1", arcname="model_algo-1")
    return tar


def test_two_endpoints_at_once(tmp_path, backend):
    tar = _model_tar(tmp_path)
    with Endpoint(tar, backend) as a, Endpoint(tar, backend) as b:
        assert a.port != b.port and a.ping() and b.ping()
        for ep in (a, b):
            resp = ep.invoke(b"1,2\n3,4\n", "text/csv", "application/json")
            assert resp.status == 200
            assert resp.json()["n"] == 2 and resp.json()["model"] == ["model_algo-1"]
        custom = {"X-Amzn-SageMaker-Custom-Attributes": "trace=1"}  # InvokeEndpoint's CustomAttributes
        resp = a.invoke(b"1,2\n", "text/csv", headers=custom)
        assert resp.json()["custom"] == "trace=1" and resp.headers[next(iter(custom))] == "trace=1"
        with pytest.raises(CustomerError, match=f"Port {a.port} is already in use"):
            Endpoint(tar, backend, port=a.port).start()
        root = a.root
    assert not root.exists() and not a.ping()


def test_endpoint_that_does_not_come_up_is_diagnosed(tmp_path, backend):
    tar = _model_tar(tmp_path)
    with pytest.raises(CustomerError) as info:
        Endpoint(tar, backend, env={"STUB_SERVE_FAIL": "bad model file"}).start()
    assert "exited with code 3" in str(info.value) and "bad model file" in str(info.value)


def test_unsafe_archive_is_refused_before_serving(tmp_path, backend):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as t:
        info = tarfile.TarInfo("../outside")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(CustomerError, match="'..'"):
        Endpoint(bad, backend).start()
    assert not (tmp_path / "outside").exists()


def test_transform_honours_execution_parameters(tmp_path, backend):
    tar = _model_tar(tmp_path)
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "b.csv").write_text("1\n2\n3\n")
    (inputs / "a.csv").write_text("4\n5\n")
    (inputs / "sub" / "c.csv").write_text("6\n")
    env = {"STUB_EXECUTION_PARAMETERS": json.dumps({"BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 1})}
    with Endpoint(tar, backend, env=env) as ep:
        params = resolve_params(split_type="Line", assemble_with="Line", content_type="text/csv",
                                container=ep.execution_parameters())
        assert params.strategy == "SingleRecord" and params.max_payload_mb == 1
        outputs = run_transform(ep, inputs, tmp_path / "out", params)
        assert [p.relative_to(tmp_path / "out").as_posix() for p in outputs] == ["a.csv.out", "b.csv.out",
                                                                                "sub/c.csv.out"]
        answers = [json.loads(line) for line in (tmp_path / "out" / "b.csv.out").read_text().splitlines()]
        assert [a["n"] for a in answers] == [1, 1, 1] and answers[0]["ct"] == "text/csv"
        # the user's MultiRecord wins over the container's answer: one request per file
        params = resolve_params(split_type="Line", strategy="MultiRecord", content_type="text/csv",
                                container=ep.execution_parameters())
        run_transform(ep, inputs, tmp_path / "out2", params)
        assert json.loads((tmp_path / "out2" / "b.csv.out").read_text())["n"] == 3


def test_broken_pipe_data_fails_the_job(tmp_path, backend):
    data = tmp_path / "gz"
    data.mkdir()
    (data / "part-0.gz").write_bytes(b"this is not gzip")
    spec = _job(tmp_path, [job_channel("train", str(data), InputMode="Pipe", CompressionType="Gzip")])
    result = run_training(spec, backend, Display(live=False, stream=io.StringIO()))
    assert result.status == "Failed" and result.exit_code == 2
    assert result.failure_reason.startswith("Customer Error: File ") and "part-0.gz" in result.failure_reason
    assert "not valid gzip" in result.failure_reason


def test_pipe_mode_prints_a_total_per_channel_and_epoch(tmp_path, backend):
    """Off a terminal the progress is throttled: each channel's epoch still ends with its total."""
    data = _data(tmp_path / "train", 3)
    size = sum(p.stat().st_size for p in data.iterdir())
    spec = _job(tmp_path, [job_channel("train", str(data), InputMode="Pipe")], hps={"epochs": "2"})
    out = io.StringIO()
    result = run_training(spec, backend, Display(live=False, stream=out, plain_every_s=3600))
    assert result.status == "Completed", result.failure_reason
    lines = [line for line in out.getvalue().splitlines() if "pipe data fed" in line]
    for epoch in (0, 1):
        assert f"smlocal: pipe data fed: channel 'train' epoch {epoch} on algo-1: {size} B" in lines, lines
    assert lines[-1] == f"smlocal: pipe data fed: {2 * size} B"


def test_the_feeders_error_wins_over_the_exit_it_causes(tmp_path, backend):
    """The algorithm sees an empty pipe when the feeder fails and exits at once ("holds no records"):
    the reason is still the feeder's error, in every run."""
    data = tmp_path / "gz"
    data.mkdir()
    (data / "part-0.gz").write_bytes(b"this is not gzip")
    for attempt in range(5):
        spec = _job(tmp_path, [job_channel("train", str(data), InputMode="Pipe", CompressionType="Gzip")],
                    hps={"fail_if_empty": "true"}, name=f"empty-{attempt}")
        result = run_training(spec, backend, Display(live=False, stream=io.StringIO()))
        assert result.status == "Failed" and result.exit_code == 2
        assert "not valid gzip" in result.failure_reason, result.failure_reason
        assert read_record(result.plan.record_file)["FailureReason"] == result.failure_reason


def test_container_entrypoint_runs_on_the_process_backend_too(tmp_path):
    """A job's ContainerEntrypoint/ContainerArguments replace the program, as `docker run --entrypoint` does."""
    script = tmp_path / "entry.py"
    script.write_text("import os, sys\n"
                      "open(os.path.join(os.environ['SAGEMAKER_BASE_DIR'], 'model', 'args.txt'), 'w')"
                      ".write(' '.join(sys.argv[1:]))\n")
    body = {"TrainingJobName": "entry", "AlgorithmSpecification": {
                "TrainingImage": "stub:1", "TrainingInputMode": "File",
                "ContainerEntrypoint": [sys.executable, str(script)], "ContainerArguments": ["--mode", "fast"]},
            "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")}}
    result = run_training(parse_job(body), ProcessBackend(), Display(live=False, stream=io.StringIO()))
    assert result.status == "Completed", result.failure_reason
    with tarfile.open(result.model_artifacts) as tar:
        assert tar.extractfile("args.txt").read() == b"--mode fast"


def test_a_symlink_loop_in_a_model_directory_is_refused_before_serving(tmp_path, backend):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model_algo-1").write_text("{}")
    (model / "loop").symlink_to(".")
    with pytest.raises(CustomerError, match="symbolic link .*loop"):
        Endpoint(model, backend).start()
