"""scripts/build_and_push.sh: a real push to a registry server on loopback, pulled back and run; the ECR
flow through --dry-run (which must run nothing: docker and aws on PATH are tripwires there).

The registry is Debian's ``docker-registry`` package (the CNCF distribution server), started by a fixture on
127.0.0.1 with its storage in a temporary directory. Docker allows plain HTTP to 127.0.0.0/8 registries.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import docker
import pytest
import requests

from tests.container.conftest import run_image, wait_for_http
from tests.helpers import REPO, free_port, write_config

SCRIPT = REPO / "scripts" / "build_and_push.sh"
REGISTRY_BIN = "/usr/bin/docker-registry"
MANIFEST_TYPES = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.oci.image.manifest.v1+json"])


def registry_binary() -> str:
    found = shutil.which("docker-registry") or (REGISTRY_BIN if Path(REGISTRY_BIN).exists() else None)
    if found:
        return found
    if os.getuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("Debian's docker-registry package is not installed (apt-get install -y docker-registry)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "docker-registry"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # stale package lists: refresh once
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not Path(REGISTRY_BIN).exists():
        pytest.skip(f"could not install docker-registry: {done.stderr[-500:]}")
    return REGISTRY_BIN


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry server on 127.0.0.1:<free port>; yields "127.0.0.1:PORT", stopped afterwards."""
    binary = registry_binary()
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / "storage"}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
    log = (root / "registry.log").open("w")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    try:
        wait_for_http(f"http://{host}/v2/", "docker-registry", alive=lambda: proc.poll() is None,
                      logs=(root / "registry.log").read_text, timeout=30, interval=0.2)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def script(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.mark.container
def test_push_to_registry_then_pull_and_run(docker_client, smlocal_image, registry, opt_ml):
    """Build (layers cached from smlocal:test), tag :1 and :latest, push, delete locally, pull back, run."""
    if not shutil.which("docker"):
        pytest.skip("the docker CLI is not on PATH (the script drives docker build/tag/push)")
    name = "smlocal-push-test"
    done = script("--registry", registry, "--name", name, "--algorithm", "linear-learner")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # the registry itself holds both tags and every blob of the manifest
    tags = requests.get(f"http://{registry}/v2/{name}/tags/list", timeout=10).json()["tags"]
    assert sorted(tags) == ["1", "latest"]
    manifest = requests.get(f"http://{registry}/v2/{name}/manifests/1", headers={"Accept": MANIFEST_TYPES},
                            timeout=10).json()
    blobs = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    for digest in blobs:
        assert requests.head(f"http://{registry}/v2/{name}/blobs/{digest}", timeout=10).status_code == 200

    remote = f"{registry}/{name}"
    for ref in (f"{remote}:1", f"{remote}:latest", f"{name}:1", f"{name}:latest"):
        docker_client.images.remove(ref)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(f"{remote}:1")
    pulled = docker_client.images.pull(remote, tag="1")
    try:
        env = dict(item.split("=", 1) for item in pulled.attrs["Config"]["Env"])
        assert env["SMLOCAL_ALGORITHM"] == "linear-learner"  # --algorithm reached the image
        # the pulled image runs linear learner by default and rejects a bad configuration properly
        write_config(opt_ml, {"feature_dim": 3}, {"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
        (opt_ml / "input" / "data" / "train").mkdir()
        (opt_ml / "input" / "data" / "train" / "d.csv").write_text("1,0.5,0.2,0.1\n0,0.1,0.9,0.3\n")
        result = run_image(docker_client, f"{remote}:1", "train", base=opt_ml, network="none")
        assert result.exit_code == 2, result.logs[-3000:]
        assert result.failure.startswith("Customer Error") and "predictor_type" in result.failure, result.failure
    finally:
        docker_client.images.remove(f"{remote}:1", force=True)


# ---------------------------------------------------------------- --dry-run (no Docker, no AWS needed)


@pytest.fixture
def tripwire_path(tmp_path) -> tuple[dict, Path]:
    """PATH whose docker and aws record any call and fail: --dry-run must call neither."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ("docker", "aws"):
        exe = bin_dir / tool
        exe.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 97\n')
        exe.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for var in ("AWS_ACCOUNT_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        env[var] = ""
    return env, calls


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_dry_run_ecr_prints_the_whole_flow(tripwire_path):
    env, calls = tripwire_path
    env.update(AWS_ACCOUNT_ID="123456789012", AWS_REGION="eu-west-1")
    done = script("--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert lines(done.stdout) == [
        f"docker build --network host -f {REPO}/Dockerfile --build-arg SMLOCAL_ALGORITHM=kmeans "
        f"-t smlocal:1 -t smlocal:latest {REPO}",
        "aws ecr describe-repositories --region eu-west-1 --repository-names smlocal >/dev/null 2>&1 "
        "|| aws ecr create-repository --region eu-west-1 --repository-name smlocal >/dev/null",
        f"aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin {uri}",
        f"docker tag smlocal:1 {uri}/smlocal:1",
        f"docker push {uri}/smlocal:1",
        f"docker tag smlocal:1 {uri}/smlocal:latest",
        f"docker push {uri}/smlocal:latest",
    ]
    assert not calls.exists(), calls.read_text()


def test_dry_run_without_aws_configuration_shows_lookups_and_placeholders(tripwire_path):
    env, calls = tripwire_path
    done = script("--dry-run", "--gpu", "--algorithm", "linear-learner", env=env)
    assert done.returncode == 0, done.stderr
    out = lines(done.stdout)
    assert out[:2] == ["aws sts get-caller-identity --query Account --output text", "aws configure get region"]
    assert f"-f {REPO}/Dockerfile.gpu --build-arg SMLOCAL_ALGORITHM=linear-learner" in out[2]
    assert "-t smlocal-gpu:1 -t smlocal-gpu:latest" in out[2]
    assert out[-1] == "docker push '<account>.dkr.ecr.<region>.amazonaws.com/smlocal-gpu:latest'"
    assert not calls.exists(), calls.read_text()


def test_dry_run_registry_needs_no_aws(tripwire_path):
    env, calls = tripwire_path
    done = script("--dry-run", "--registry", "127.0.0.1:5000", "--name", "team/km", "--version", "2", env=env)
    assert done.returncode == 0, done.stderr
    out = lines(done.stdout)
    assert not any(line.startswith("aws") for line in out)
    assert out[1:] == ["docker tag team/km:2 127.0.0.1:5000/team/km:2", "docker push 127.0.0.1:5000/team/km:2",
                       "docker tag team/km:2 127.0.0.1:5000/team/km:latest",
                       "docker push 127.0.0.1:5000/team/km:latest"]
    assert not calls.exists()


@pytest.mark.parametrize("args", [["--bogus"], ["--algorithm", "xgboost"], ["--name", "Bad Name"]])
def test_bad_options_are_refused(tripwire_path, args):
    env, calls = tripwire_path
    done = script("--dry-run", *args, env=env)
    assert done.returncode == 2 and "build_and_push:" in done.stderr, (done.returncode, done.stderr)
    assert done.stdout == "" and not calls.exists()
