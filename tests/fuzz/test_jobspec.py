"""Job-spec parser: valid CreateTrainingJob bodies give the spec they describe; mutated bodies and job
files of any bytes (what ``smlocal train --job`` reads) are a ``CustomerError`` or a spec."""
from __future__ import annotations

import copy
import functools
import json
import tempfile
from pathlib import Path

from hypothesis import example, given, strategies as st

from smlocal.cli import build_parser
from smlocal.errors import CustomerError
from smlocal.runtime import commands
from smlocal.runtime.jobspec import JobSpec, parse_job
from tests.fuzz.harness import CI, Target, is_error, outcome
from tests.fuzz.mutations import fuzzed


@functools.cache
def workdir() -> Path:
    """A directory with a ``train`` channel directory, for the whole run (removed at exit)."""
    root = Path(_TMP.name)
    (root / "train").mkdir(exist_ok=True)
    (root / "train" / "part-0.csv").write_text("1,2\n")
    return root


_TMP = tempfile.TemporaryDirectory(prefix="smlocal-fuzz-jobspec-")
_names = st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,20}", fullmatch=True)
_modes = st.sampled_from(["File", "Pipe", "FastFile", "pipe", "FILE"])
_strings = st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=8)


@st.composite
def valid_bodies(draw) -> dict:
    """A CreateTrainingJob body with drawn values in every field we act on; channels are relative paths."""
    body = {
        "TrainingJobName": draw(_names),
        "AlgorithmSpecification": {"AlgorithmName": draw(st.sampled_from(["kmeans", "linear-learner"])),
                                   "TrainingInputMode": draw(_modes)},
        "HyperParameters": draw(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), _strings,
                                                max_size=3)),
        "InputDataConfig": [{"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": "train"}},
                             "ContentType": "text/csv"}
                            for name in draw(st.lists(st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True),
                                                      max_size=2, unique=True))],
        "OutputDataConfig": {"S3OutputPath": "out"},
        "ResourceConfig": {"InstanceCount": draw(st.integers(1, 4)), "InstanceType": "ml.m5.large"},
        "RoleArn": "arn:aws:iam::1:role/x",
    }
    if draw(st.booleans()):
        body["StoppingCondition"] = {"MaxRuntimeInSeconds": draw(st.integers(1, 10**6))}
    return body


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _strings,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_strings, inner, max_size=3),
                     max_leaves=8)


@st.composite
def mutated_bodies(draw) -> dict:
    """A valid body with 1-3 values replaced, deleted, or unknown keys added, anywhere in the tree."""
    body = copy.deepcopy(draw(valid_bodies()))
    for _ in range(draw(st.integers(1, 3))):
        node, key = body, None
        while True:  # walk down to a drawn node
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys or (key is not None and draw(st.booleans())):
                break
            key = draw(st.sampled_from(keys))
            parent, node = node, node[key]
        if key is None:
            continue
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[key] = draw(_json)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(_strings)] = draw(_json)
    return body


def _expected(body: dict, spec: JobSpec) -> None:
    root = workdir()
    assert spec.job_name == body["TrainingJobName"]
    assert spec.algorithm == body["AlgorithmSpecification"]["AlgorithmName"]
    assert spec.input_mode == {"pipe": "Pipe"}.get(body["AlgorithmSpecification"]["TrainingInputMode"].lower(),
                                                   "File")
    assert dict(spec.hyperparameters) == body["HyperParameters"]
    assert [c.name for c in spec.channels] == [c["ChannelName"] for c in body["InputDataConfig"]]
    assert all(c.source == str((root / "train").resolve()) for c in spec.channels)
    assert spec.output_path == str((root / "out").resolve())
    assert spec.instance_count == body["ResourceConfig"]["InstanceCount"]
    assert spec.max_runtime == body.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")


def load_job_file(data: bytes):
    """``smlocal train --job FILE``'s reading and validation of a job file holding ``data``."""
    path = workdir() / "job.json"
    path.write_bytes(data)
    return commands._train_spec(build_parser().parse_args(["train", "--job", str(path)]))


_job_files = fuzzed(valid_bodies().map(lambda b: json.dumps(b).encode()), max_size=256)


def check(case) -> None:
    kind, value = case
    if kind == "file":
        got = outcome(lambda: load_job_file(value))
    else:
        got = outcome(lambda: parse_job(value, base=workdir()))
    assert isinstance(got, (JobSpec, CustomerError)), got
    if kind == "valid":
        assert not is_error(got), got
        _expected(value, got)


TARGET = Target("jobspec", st.tuples(st.just("valid"), valid_bodies()) | st.tuples(st.just("body"), mutated_bodies())
                | st.tuples(st.just("file"), _job_files), check)


@CI
@given(valid_bodies())
def test_valid_bodies_give_the_spec_they_describe(body):
    check(("valid", body))


@CI
@given(mutated_bodies())
def test_mutated_bodies_are_a_customer_error_or_a_spec(body):
    check(("body", body))


@CI
@given(_job_files)
@example(b'\x80{"TrainingJobName": "0"}')  # finding: a job file that is not UTF-8 was a UnicodeDecodeError
def test_job_files_of_any_bytes_are_a_customer_error_or_a_spec(data):
    check(("file", data))
