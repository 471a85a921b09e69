"""smlocal convert / inspect: conversions in both directions, reports, bad input, argparse wiring."""
from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
import scipy.sparse as sp

from smlocal.data.csv import read_csv
from smlocal.data.protobuf import decode_records, dense_to_records, sparse_to_records
from smlocal.data.recordio import encode_records, iter_records
from smlocal.data.tools import add_commands, convert, convert_arrays, format_report, inspect
from smlocal.errors import CustomerError


def read_pbr(path, cast=False):
    with open(path, "rb") as f:
        return decode_records(list(iter_records(f, str(path))), cast=cast)


def write_csv(path, rows):
    path.write_text("".join(",".join(repr(float(v)) for v in r) + "\n" for r in rows))
    return path


def parser():
    p = argparse.ArgumentParser()
    add_commands(p.add_subparsers(dest="command"))
    return p


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((25, 4)).astype(np.float32), rng.integers(0, 3, 25).astype(np.float32)


def test_csv_to_recordio_label_first(tmp_path, data):
    x, y = data
    src = write_csv(tmp_path / "train.csv", np.column_stack([y, x]))
    result = convert(src)
    assert result.output == str(tmp_path / "train.recordio") and result.rows == 25 and result.labeled
    feats, labels = read_pbr(result.output)
    assert feats.dtype == np.float32 and labels.dtype == np.float32
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)


def test_csv_label_column_and_no_label(tmp_path, data):
    x, y = data
    src = write_csv(tmp_path / "t.csv", np.column_stack([x[:, :2], y, x[:, 2:]]))
    convert(src, tmp_path / "a.pbr", label_column=2)
    feats, labels = read_pbr(tmp_path / "a.pbr")
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)
    convert(src, tmp_path / "b.pbr", label_column=None)
    feats, labels = read_pbr(tmp_path / "b.pbr")
    assert labels is None and feats.shape == (25, 5)
    with pytest.raises(CustomerError, match="--label-column 9 is out of range"):
        convert(src, tmp_path / "c.pbr", label_column=9)


def test_npy_and_dense_npz(tmp_path, data):
    x, y = data
    np.save(tmp_path / "m.npy", np.column_stack([x, y]).astype(np.float64))
    convert(tmp_path / "m.npy", tmp_path / "m.pbr", label_column=-1)
    feats, labels = read_pbr(tmp_path / "m.pbr")
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)
    np.savez(tmp_path / "d.npz", x)
    result = convert(tmp_path / "d.npz", label_column=None)
    assert result.feature_dim == 4 and not result.labeled
    np.testing.assert_array_equal(read_pbr(result.output)[0], x)


def test_sparse_npz(tmp_path):
    dense = np.zeros((30, 50), dtype=np.float32)
    dense[::3, 7] = 2.5
    dense[:, 0] = np.arange(30) % 2  # label column
    sp.save_npz(tmp_path / "s.npz", sp.csr_matrix(dense))
    result = convert(tmp_path / "s.npz", tmp_path / "s.pbr", label_column=0)
    assert result.sparse and result.feature_dim == 49
    feats, labels = read_pbr(tmp_path / "s.pbr")
    assert sp.issparse(feats)
    np.testing.assert_array_equal(feats.toarray(), dense[:, 1:])
    np.testing.assert_array_equal(labels, dense[:, 0])


def test_recordio_to_csv_round_trips_exactly(tmp_path, data):
    x, y = data
    (tmp_path / "in.pbr").write_bytes(encode_records(dense_to_records(x, y)))
    result = convert(tmp_path / "in.pbr")
    assert result.direction == "to-csv" and result.output == str(tmp_path / "in.csv")
    feats, labels = read_csv(tmp_path / "in.csv", label_size=1)
    np.testing.assert_array_equal(feats, x)
    np.testing.assert_array_equal(labels, y)


def test_float64_and_sparse_recordio_to_csv(tmp_path):
    x = np.array([[0.1, 1e300], [2.0 / 3, -5.0]])
    (tmp_path / "f64.pbr").write_bytes(encode_records(dense_to_records(x)))
    convert(tmp_path / "f64.pbr", tmp_path / "f64.csv")
    text = (tmp_path / "f64.csv").read_text()
    assert [[float(c) for c in line.split(",")] for line in text.splitlines()] == x.tolist()
    csr = sp.csr_matrix(np.array([[0, 1.5, 0], [0, 0, 0]], dtype=np.float32))
    (tmp_path / "s.pbr").write_bytes(encode_records(sparse_to_records(csr, np.array([1, 0]))))
    convert(tmp_path / "s.pbr", tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text() == "1,0.0,1.5,0.0\n0,0.0,0.0,0.0\n"


def test_convert_bad_csv_leaves_no_output(tmp_path):
    src = tmp_path / "h.csv"
    src.write_text("label,a,b\n1,2,3\n")
    with pytest.raises(CustomerError, match="line 1.*header") as info:
        convert(src, tmp_path / "h.pbr")
    assert info.value.exit_code == 2
    assert not (tmp_path / "h.pbr").exists() and not list(tmp_path.glob(".*partial"))


def test_convert_nan_is_named(tmp_path):
    src = tmp_path / "n.csv"
    src.write_text("1,2\n3,nan\n")
    with pytest.raises(CustomerError, match=r"n.csv line 2: Found missing \(NaN\) values"):
        convert(src)


def test_convert_arrays(tmp_path, data):
    x, y = data
    convert_arrays(x.astype(np.float64), y, tmp_path / "a.pbr")
    feats, labels = read_pbr(tmp_path / "a.pbr")
    assert feats.dtype == np.float32
    np.testing.assert_array_equal(feats, x)


def test_inspect_recordio_file(tmp_path, data):
    x, y = data
    (tmp_path / "d.pbr").write_bytes(encode_records(dense_to_records(x, y.astype(np.float64))))
    report = inspect(tmp_path / "d.pbr")
    f = report.files[0]
    assert (f.format, f.records, f.feature_dims, f.dense_records, f.sparse_records) == (
        "recordio-protobuf", 25, [4], 25, 0)
    assert f.feature_dtypes == ["float32"] and f.label_dtypes == ["float64"] and f.labeled_records == 25
    assert report.ok and f.error is None
    text = format_report(report)
    assert "records:       25" in text and "feature dim:   4" in text and "25 of 25 labeled (float64)" in text


def test_inspect_directory_with_sparse_int_and_bad_files(tmp_path):
    root = tmp_path / "channel"
    (root / "sub").mkdir(parents=True)
    csr = sp.csr_matrix(np.eye(3, dtype=np.float32))
    (root / "a.pbr").write_bytes(encode_records(sparse_to_records(csr)))
    (root / "sub" / "b.pbr").write_bytes(encode_records(dense_to_records(np.array([[1, 2, 3]]))))
    good = encode_records(dense_to_records(np.ones((2, 3), dtype=np.float32)))
    (root / "c.pbr").write_bytes(good + encode_records([b"\xff\xff"]))
    (root / ".hidden").write_bytes(b"ignored")
    report = inspect(root)
    names = [p.path.rsplit("/", 1)[-1] for p in report.files]
    assert names == ["a.pbr", "c.pbr", "b.pbr"]
    a, c, b = report.files
    assert a.sparse_records == 3 and a.feature_dims == [3] and a.labeled_records == 0
    assert b.feature_dtypes == ["int32"]
    assert c.records == 2 and c.error.startswith(f"record #2 at byte offset {len(good)} is not a valid")
    assert not report.ok and report.records == 6
    assert "PROBLEMS FOUND" in format_report(report)


def test_inspect_reports_framing_error_and_nan(tmp_path):
    x = np.ones((4, 2), dtype=np.float32)
    x[2, 1] = np.nan
    data = encode_records(dense_to_records(x))
    (tmp_path / "n.pbr").write_bytes(data + b"\x0a\x23\xd7\xce\x40\x00\x00\x00")
    f = inspect(tmp_path / "n.pbr").files[0]
    per = len(data) // 4
    assert f.first_nan == f"record #2 at byte offset {2 * per}"
    assert "Truncated" in f.error and f"byte offset {len(data)}" in f.error


def test_inspect_csv_and_unknown(tmp_path):
    (tmp_path / "a.csv").write_text("1,2,3\n4,5,6\n7,8\n")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01garbage")
    (tmp_path / "c.csv").write_text("1,2,3\n4,nan,6\n")
    report = inspect(tmp_path)
    a, b, c = report.files
    assert a.format == "csv" and "line 3 has 2 columns" in a.error
    assert b.format == "unknown" and "neither RecordIO" in b.error
    assert (c.format, c.records, c.feature_dims, c.first_nan, c.error) == ("csv", 2, [3], "line 2", None)


def test_cli_convert_and_inspect(tmp_path, data, capsys):
    x, y = data
    src = write_csv(tmp_path / "t.csv", np.column_stack([x, y]))
    args = parser().parse_args(["convert", str(src), "--label-column", "4", "--output", str(tmp_path / "o.pbr")])
    assert args.handler(args) == 0
    assert "wrote 25 rows" in capsys.readouterr().out
    np.testing.assert_array_equal(read_pbr(tmp_path / "o.pbr")[1], y)
    args = parser().parse_args(["inspect", str(tmp_path / "o.pbr"), "--json"])
    assert args.handler(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["records"] == 25 and report["feature_dims"] == [4] and report["ok"]
    args = parser().parse_args(["convert", str(src), "--no-label", "-o", str(tmp_path / "n.pbr")])
    assert args.handler(args) == 0 and read_pbr(tmp_path / "n.pbr")[1] is None
    with pytest.raises(SystemExit):
        parser().parse_args(["convert", str(src), "--no-label", "--label-column", "1"])


def test_cli_inspect_bad_file_exits_2(tmp_path, capsys):
    (tmp_path / "bad.pbr").write_bytes(encode_records([b"\xff\xff"]))
    args = parser().parse_args(["inspect", str(tmp_path / "bad.pbr")])
    assert args.handler(args) == 2
    assert "first error:   record #0 at byte offset 0" in capsys.readouterr().out


def test_cli_missing_input_is_a_customer_error(tmp_path):
    args = parser().parse_args(["convert", str(tmp_path / "nope.csv")])
    with pytest.raises(CustomerError, match="is not a file") as info:
        args.handler(args)
    assert info.value.exit_code == 2


def test_recordio_output_is_readable_by_the_stream_reader(tmp_path, data):
    x, y = data
    src = write_csv(tmp_path / "t.csv", np.column_stack([y, x]))
    convert(src, tmp_path / "t.pbr")
    payloads = list(iter_records(io.BytesIO((tmp_path / "t.pbr").read_bytes())))
    assert payloads == dense_to_records(x, y)


def test_inspect_reports_infinite_values(tmp_path):
    x = np.ones((4, 2), dtype=np.float32)
    x[1, 0] = np.inf
    data = encode_records(dense_to_records(x))
    (tmp_path / "i.pbr").write_bytes(data)
    (tmp_path / "i.csv").write_text("1,2,3\n4,5,6\n7,1e400,9\n")
    report = inspect(tmp_path)
    csv_file, pbr = report.files
    assert csv_file.first_infinite == "line 3 column 2" and csv_file.first_nan is None
    assert pbr.first_infinite == f"record #1 at byte offset {len(data) // 4}"
    assert not report.ok
    assert "first infinite value: line 3 column 2" in format_report(report)


def test_convert_infinite_value_is_named(tmp_path):
    src = tmp_path / "i.csv"
    src.write_text("1,2\n3,-inf\n")
    with pytest.raises(CustomerError, match=r"i.csv line 2 column 2: Found infinite values"):
        convert(src)
    with pytest.raises(CustomerError, match=r"^row 0 column 1: Found infinite values"):
        convert_arrays(np.array([[1.0, np.inf], [1.0, 2.0]]), None, tmp_path / "a.pbr")
