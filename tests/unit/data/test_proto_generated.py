"""The committed record_pb2.py is exactly what scripts/gen_proto.py generates from proto/record.proto."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO


def test_committed_record_pb2_matches_a_fresh_generation(tmp_path):
    pytest.importorskip("grpc_tools")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fresh = (tmp_path / "record_pb2.py").read_text()
    committed = (REPO / "src" / "smlocal" / "data" / "record_pb2.py").read_text()
    assert fresh == committed, (
        "src/smlocal/data/record_pb2.py differs from proto/record.proto: run `python scripts/gen_proto.py`"
    )


def test_generated_schema_is_sagemakers():
    from smlocal.data import record_pb2

    record = record_pb2.Record.DESCRIPTOR
    assert record.full_name == "aialgs.data.Record"
    assert {f.name: f.number for f in record.fields} == {
        "features": 1, "label": 2, "uid": 3, "metadata": 4, "configuration": 5}
    value = record_pb2.Value.DESCRIPTOR
    assert {f.name: f.number for f in value.fields} == {
        "float32_tensor": 2, "float64_tensor": 3, "int32_tensor": 7, "bytes": 9}
    for name in ("Float32Tensor", "Float64Tensor", "Int32Tensor"):
        tensor = getattr(record_pb2, name).DESCRIPTOR
        assert {f.name: f.number for f in tensor.fields} == {"values": 1, "keys": 2, "shape": 3}
