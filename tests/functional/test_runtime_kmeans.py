"""End to end with the real k-means and server, process backend: jobs from CreateTrainingJob JSON in File
and Pipe mode (CSV, RecordIO-protobuf, gzip, RecordIO wrapping, ShardedByS3Key over 2 hosts), the
model.tar.gz served and queried, batch transform, a failing job, a timeout. Data written with the real
``sagemaker`` SDK where it has a writer."""
from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from smlocal.artifacts.loader import load_model_dir
from smlocal.runtime.endpoint import Endpoint
from smlocal.runtime.process import ProcessBackend
from smlocal.runtime.records import read_record
from tests.datasets import blobs, sdk_recordio
from tests.helpers import (
    assert_found_centers,
    job_channel,
    needs_mxnet,
    records_read_in_epoch0,
    run_cli,
    run_job,
    smlocal_serve,
    training_job,
)

CENTERS = np.array([[0, 0, 0, 0], [8, 8, 0, 0], [0, 8, 8, -8]], dtype=np.float32)
ROWS = (40, 60, 80, 100)  # rows per file: shards are told apart by their sizes
KMEANS_IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"


@pytest.fixture
def csv_dir(tmp_path):
    d = tmp_path / "csv"
    d.mkdir()
    for i, n in enumerate(ROWS):
        np.savetxt(d / f"part-{i}.csv", blobs(CENTERS, n, seed=i, std=0.3), delimiter=",", fmt="%.5f")
    return d


def _job(tmp_path, channels, hps=None, name="km", **options):
    """A k-means job on this module's blobs as written for SageMaker (its role is ignored locally)."""
    return training_job(name, channels, tmp_path / "out", image=KMEANS_IMAGE,
                        hps={"k": "3", "feature_dim": "4", "mini_batch_size": "50", **(hps or {})},
                        RoleArn="arn:aws:iam::111111111111:role/ignored-locally", **options)


def _centers(model_tar: Path, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "extracted"
    with tarfile.open(model_tar) as tar:
        assert tar.getnames() == ["model_algo-1"]  # at the archive root, like SageMaker
        tar.extractall(out)
    return load_model_dir(out).centers


def test_file_mode_csv_from_job_json_served_and_transformed(tmp_path, csv_dir):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(_job(tmp_path, [job_channel("train", csv_dir, ContentType="text/csv;label_size=0")])))
    cli = run_cli("train", "--job", str(job), "--backend", "process")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "TrainingJobStatus: Completed" in cli.stdout
    model_tar = tmp_path / "out" / "km" / "output" / "model.tar.gz"
    centers = _centers(model_tar, tmp_path)
    assert_found_centers(centers, CENTERS, 1.0)

    queries = blobs(CENTERS, 5, seed=99, std=0.3)
    body = "\n".join(",".join(f"{v:.5f}" for v in row) for row in queries).encode()
    with Endpoint(model_tar, ProcessBackend(), workers=1) as ep:
        resp = ep.invoke(body, "text/csv", "application/json")
        assert resp.status == 200, resp.text()
        predictions = resp.json()["predictions"]
        rounded = np.array([[float(f"{v:.5f}") for v in row] for row in queries], dtype=np.float32)
        dist = np.linalg.norm(rounded[:, None, :] - centers[None], axis=2)
        assert [p["closest_cluster"] for p in predictions] == [float(i) for i in dist.argmin(1)]
        np.testing.assert_allclose([p["distance_to_cluster"] for p in predictions], dist.min(1), rtol=1e-4)

        # batch transform through the same kind of endpoint, via the CLI: one .out per file, in order
    out = tmp_path / "transformed"
    cli = run_cli("transform", "--model", str(model_tar), "--input", str(csv_dir), "--output", str(out),
                  "--content-type", "text/csv", "--accept", "text/csv", "--split-type", "Line",
                  "--strategy", "MultiRecord", "--max-payload-mb", "1", "--assemble-with", "Line", "--workers", "1")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"part-{i}.csv.out" for i in range(len(ROWS))]
    for i, n in enumerate(ROWS):
        lines = (out / f"part-{i}.csv.out").read_text().splitlines()
        assert len(lines) == n
        data = np.loadtxt(csv_dir / f"part-{i}.csv", delimiter=",", dtype=np.float32)
        expected = np.linalg.norm(data[:, None, :] - centers[None], axis=2).argmin(1)
        assert [float(line.split(",")[0]) for line in lines] == [float(c) for c in expected]


def test_serve_and_predict_commands(tmp_path, csv_dir):
    result = run_job(_job(tmp_path, [job_channel("train", csv_dir, ContentType="text/csv;label_size=0")]))
    assert result.status == "Completed", result.failure_reason
    with smlocal_serve(result.model_artifacts) as port:
        request = tmp_path / "rows.csv"
        request.write_text("0,0,0,0\n8,8,0,0\n")
        cli = run_cli("predict", str(request), "--port", str(port), "--content-type", "text/csv",
                      "--accept", "application/jsonlines")
        assert cli.returncode == 0, cli.stderr
        answers = [json.loads(line) for line in cli.stdout.splitlines()]
        assert len(answers) == 2 and answers[0]["closest_cluster"] != answers[1]["closest_cluster"]
        cli = run_cli("predict", "-", "--port", str(port), "--content-type", "text/csv", input="1,2\n")
        assert cli.returncode == 1 and "400" in cli.stderr  # wrong feature count: the server's own answer


def test_pipe_mode_recordio_protobuf_gzip(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    for i, n in enumerate(ROWS):
        (d / f"part-{i}.pbr.gz").write_bytes(gzip.compress(sdk_recordio(blobs(CENTERS, n, seed=i, std=0.3))))
    body = _job(tmp_path, [job_channel("train", d, CompressionType="Gzip", ShuffleConfig={"Seed": 1})],
                hps={"epochs": "3"}, mode="Pipe")
    result = run_job(body)
    assert result.status == "Completed", result.failure_reason
    assert_found_centers(_centers(result.model_artifacts, tmp_path), CENTERS, 1.0)
    assert not result.plan.work_dir.exists()  # no copy of the data, and the work trees are gone


FILE_GZIP = ["--algorithm", "kmeans", "--backend", "process", "--hp", "k=3", "--hp", "feature_dim=4",
             "--content-type", "train=text/csv;label_size=0", "--compression", "train=Gzip"]


def test_file_mode_gzip_is_decompressed(tmp_path, csv_dir):
    gz = tmp_path / "gz"
    gz.mkdir()
    for part in sorted(csv_dir.iterdir()):
        (gz / f"{part.name}.gz").write_bytes(gzip.compress(part.read_bytes()))
    cli = run_cli("train", *FILE_GZIP, "--channel", f"train={gz}", "--output", str(tmp_path / "out"),
                  "--job-name", "file-gz", "--keep-work")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert_found_centers(_centers(tmp_path / "out" / "file-gz" / "output" / "model.tar.gz", tmp_path), CENTERS, 1.0)
    channel = tmp_path / "out" / "file-gz" / "hosts" / "algo-1" / "input" / "data" / "train"
    assert sorted(p.name for p in channel.iterdir()) == sorted(p.name for p in csv_dir.iterdir())
    assert (channel / "part-0.csv").read_bytes() == (csv_dir / "part-0.csv").read_bytes()


def test_file_mode_gzip_refuses_a_plain_file_naming_it(tmp_path, csv_dir):
    cli = run_cli("train", *FILE_GZIP, "--channel", f"train={csv_dir}", "--output", str(tmp_path / "out"),
                  "--job-name", "plain")
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert f"File '{csv_dir / 'part-0.csv'}' of a CompressionType=Gzip channel is not a gzip file" in cli.stderr
    assert "not a gzip file" in read_record(tmp_path / "out" / "plain")["FailureReason"]


def test_pipe_mode_recordio_wrapping(tmp_path):
    """Each file is one raw (unframed) Record: RecordWrapperType=RecordIO makes the stream RecordIO."""
    from sagemaker.amazon.record_pb2 import Record

    d = tmp_path / "raw"
    d.mkdir()
    for i, row in enumerate(blobs(CENTERS, 90, seed=5, std=0.3)):
        record = Record()
        record.features["values"].float32_tensor.values.extend(row.tolist())
        (d / f"row-{i:03d}.pb").write_bytes(record.SerializeToString())
    result = run_job(_job(tmp_path, [job_channel("train", d, RecordWrapperType="RecordIO",
                                                 ContentType="application/x-recordio-protobuf")], mode="Pipe"))
    assert result.status == "Completed", result.failure_reason
    assert_found_centers(_centers(result.model_artifacts, tmp_path), CENTERS, 1.0)


@needs_mxnet
@pytest.mark.parametrize("mode", ["File", "Pipe"])
def test_sharded_by_s3_key_over_two_hosts(tmp_path, csv_dir, mode):
    body = _job(tmp_path, [job_channel("train", csv_dir, "ShardedByS3Key", ContentType="text/csv;label_size=0")],
                mode=mode, count=2, name=f"shard-{mode.lower()}")
    result = run_job(body)
    assert result.status == "Completed", result.failure_reason
    assert result.record["HostExitCodes"] == {"algo-1": 0, "algo-2": 0}
    logs = result.plan.logs_dir
    # round-robin over sorted keys: algo-1 reads part-0 and part-2, algo-2 part-1 and part-3
    assert records_read_in_epoch0(logs / "algo-1.log") == ROWS[0] + ROWS[2]
    assert records_read_in_epoch0(logs / "algo-2.log") == ROWS[1] + ROWS[3]
    with tarfile.open(result.model_artifacts) as tar:
        assert "model_algo-1" in tar.getnames()


def test_failing_job_reports_the_reason(tmp_path, csv_dir):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(_job(tmp_path, [job_channel("train", csv_dir, ContentType="text/csv;label_size=0")],
                                   hps={"k": "three"}, name="bad-k")))
    cli = run_cli("train", "--job", str(job))
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "TrainingJobStatus: Failed" in cli.stderr and "FailureReason: Customer Error:" in cli.stderr
    record = read_record(tmp_path / "out" / "bad-k")
    assert record["TrainingJobStatus"] == "Failed" and record["ExitCode"] == 2
    failure = (Path(record["WorkDirectory"]) / "algo-1" / "output" / "failure").read_text()
    assert record["FailureReason"] == failure[:1024] and "'k'" in failure
    described = run_cli("describe", str(tmp_path / "out" / "bad-k"), "--json")
    assert json.loads(described.stdout)["FailureReason"] == record["FailureReason"]


def test_a_bad_csv_is_named_by_the_users_path_not_the_hosts_copy(tmp_path, csv_dir):
    bad = csv_dir / "part-1.csv"
    bad.write_text("1,2,3,4\n1,2,x,4\n")
    job = tmp_path / "job.json"
    job.write_text(json.dumps(_job(tmp_path, [job_channel("train", csv_dir, ContentType="text/csv;label_size=0")],
                                   name="bad-csv")))
    cli = run_cli("train", "--job", str(job), "--backend", "process")
    assert cli.returncode == 2, cli.stdout + cli.stderr
    described = json.loads(run_cli("describe", str(tmp_path / "out" / "bad-csv"), "--json").stdout)
    for text in (described["FailureReason"], cli.stderr):
        assert f"file '{bad}' line 2, column 3" in text, text
        assert "/hosts/algo-1/" not in text


def test_max_runtime_stops_a_long_job(tmp_path, csv_dir):
    body = _job(tmp_path, [job_channel("train", csv_dir, ContentType="text/csv;label_size=0")],
                hps={"epochs": "20000", "mini_batch_size": "10"}, StoppingCondition={"MaxRuntimeInSeconds": 2})
    result = run_job(body)
    assert (result.status, result.secondary_status) == ("Stopped", "MaxRuntimeExceeded")
    assert result.record["TrainingTimeInSeconds"] < 60
    assert read_record(result.plan.job_dir)["TrainingJobStatus"] == "Stopped"
