"""Data tools for users: ``smlocal convert`` and ``smlocal inspect``.

The built-ins leave "training data serialization" to the user; these do it without the SDK:
CSV / ``.npy`` / dense or sparse ``.npz`` -> RecordIO-protobuf (float32, what both algorithms train
on), RecordIO-protobuf -> CSV (label first), and a report of what a file or directory holds.
Everything streams in chunks, so files larger than memory convert.
"""
from __future__ import annotations

import argparse
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import scipy.sparse as sp

from smlocal.data.channels import data_files, first_nan_row
from smlocal.data.csv import NAN_MESSAGE, MissingValueError, first_nan, iter_csv_blocks
from smlocal.data.protobuf import (
    RecordDecodeError,
    decode_fixed_block,
    decode_records,
    dense_to_records,
    sparse_to_records,
)
from smlocal.data.recordio import MAGIC_BYTES, DataFormatError, FixedRun, encode_records, iter_frames, read_chunks
from smlocal.errors import CustomerError

ROWS_PER_CHUNK = 65536
CSV_ROWS_PER_WRITE = 8192  # bounds the temporary text array
RECORDIO_SUFFIX = ".recordio"
_FEATURE_KEYS = ("features", "X", "x", "data")
_LABEL_KEYS = ("labels", "label", "y")


def _is_recordio(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == MAGIC_BYTES


# ------------------------------------------------------------------------------------------ convert
@dataclass
class ConvertResult:
    source: str
    output: str
    direction: str  # "to-recordio" | "to-csv"
    rows: int = 0
    feature_dim: int | None = None
    sparse: bool = False
    labeled: bool = False

    def summary(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        label = "with labels" if self.labeled else "without labels"
        return (f"wrote {self.rows} rows ({kind}, {self.feature_dim} features, {label}) "
                f"from {self.source} to {self.output}")


def _split_label(matrix, label_column: int | None, source: str):
    """(features, labels) taking column ``label_column`` out of a dense or CSR matrix."""
    if label_column is None:
        return matrix, None
    ncols = matrix.shape[1]
    col = label_column if label_column >= 0 else ncols + label_column
    if not 0 <= col < ncols:
        raise CustomerError(f"--label-column {label_column} is out of range: {source} has {ncols} columns.")
    keep = [c for c in range(ncols) if c != col]
    if sp.issparse(matrix):
        labels = np.asarray(matrix[:, col].todense()).ravel()
        return matrix[:, keep].tocsr(), labels
    return np.ascontiguousarray(matrix[:, keep]), np.asarray(matrix[:, col])


def _check_finite(features, labels, where: str) -> None:
    data = features.data if sp.issparse(features) else features
    if np.isnan(data).any() or (labels is not None and np.isnan(labels).any()):
        raise CustomerError(f"{where}: {NAN_MESSAGE}")


def _csv_matrices(path: Path) -> Iterator[tuple[np.ndarray, str]]:
    with open(path, "rb") as f:
        try:
            for block in iter_csv_blocks(f, str(path)):
                yield block.values, _csv_where(block)
        except MissingValueError as exc:
            raise CustomerError(f"{path} line {exc.line} column {exc.column} is empty: {NAN_MESSAGE}") from None
        except DataFormatError as exc:
            raise CustomerError(f"Cannot convert {path}: {exc}") from None


def _csv_where(block) -> str:
    """Where a NaN message for this block points: its first NaN's line (or its first line)."""
    row = first_nan(block.values)
    return f"{block.source} line {int(block.lines[row if row is not None else 0])}"


def _npy_matrices(path: Path) -> Iterator[tuple[np.ndarray | sp.csr_matrix, str]]:
    if path.suffix == ".npy":
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        yield from _row_chunks(_as_matrix(array, path), path)
        return
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)
        if {"format", "shape", "data", "indices", "indptr"} <= keys:  # scipy.sparse.save_npz
            yield from _row_chunks(sp.load_npz(path).tocsr(), path)
        elif len(keys) == 1:
            yield from _row_chunks(_as_matrix(npz[next(iter(keys))], path), path)
        else:
            raise CustomerError(
                f"{path} holds arrays {sorted(keys)}: save one 2-D array (np.savez(f, data)) or a scipy.sparse "
                "matrix (scipy.sparse.save_npz), or a features/labels pair via convert_arrays()."
            )


def _as_matrix(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise CustomerError(f"{path}: expected a 2-D numeric array, got shape {array.shape} dtype {array.dtype}.")
    return array


def _row_chunks(matrix, path: Path):
    for start in range(0, matrix.shape[0], ROWS_PER_CHUNK):
        stop = min(start + ROWS_PER_CHUNK, matrix.shape[0])
        yield matrix[start:stop], f"{path} rows {start}-{stop - 1}"


def _write_recordio(out: BinaryIO, features, labels, result: ConvertResult) -> None:
    features = features.astype(np.float32) if sp.issparse(features) else np.asarray(features, dtype=np.float32)
    labels = None if labels is None else np.asarray(labels, dtype=np.float32)
    if result.feature_dim is None:
        result.feature_dim = features.shape[1]
    elif features.shape[1] != result.feature_dim:
        raise CustomerError(f"{result.source}: rows have {features.shape[1]} features, earlier rows "
                            f"{result.feature_dim}.")
    encode = sparse_to_records if sp.issparse(features) else dense_to_records
    out.write(encode_records(encode(features, labels)))
    result.rows += features.shape[0]
    result.sparse = sp.issparse(features)
    result.labeled = labels is not None


def convert_arrays(features, labels, output) -> ConvertResult:
    """In-memory features (dense or scipy.sparse) and labels -> a float32 RecordIO-protobuf file."""
    result = ConvertResult("<arrays>", str(output), "to-recordio")
    with _atomic_output(Path(output), "wb") as out:
        matrix = sp.csr_matrix(features) if sp.issparse(features) else np.asarray(features)
        for start in range(0, matrix.shape[0], ROWS_PER_CHUNK):
            part = matrix[start : start + ROWS_PER_CHUNK]
            lab = None if labels is None else np.asarray(labels)[start : start + ROWS_PER_CHUNK]
            _check_finite(part, lab, f"rows {start}-{start + part.shape[0] - 1}")
            _write_recordio(out, part, lab, result)
    return result


@contextmanager
def _atomic_output(dst: Path, mode: str):
    """Write to a hidden temp file beside ``dst`` and rename it at the end: no partial output on error."""
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        with open(tmp, mode, **({"encoding": "ascii", "newline": "\n"} if "b" not in mode else {})) as out:
            yield out
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _to_csv(src: Path, dst: Path) -> ConvertResult:
    result = ConvertResult(str(src), str(dst), "to-csv")
    with open(src, "rb") as f, _atomic_output(dst, "w") as out:
        try:
            for frames in iter_frames(read_chunks(f), source=str(src)):
                features, labels = _decode_native(frames)
                _write_csv_rows(out, features, labels, result)
        except DataFormatError as exc:
            raise CustomerError(f"Cannot convert {src}: {exc}") from None
    return result


def _decode_native(frames):
    if isinstance(frames, FixedRun):
        fast = decode_fixed_block(frames.payloads, cast=False)
        if fast is not None:
            return fast
    try:
        return decode_records(frames.to_bytes(), cast=False)
    except RecordDecodeError as exc:
        raise DataFormatError(f"the record at byte offset {frames.record_offset(exc.index)} {exc.detail}") from None


def _write_csv_rows(out, features, labels, result: ConvertResult) -> None:
    """Rows as text, label first. numpy's str() of a float is the shortest text that reads back to the
    same value in its own dtype, so float32 data round-trips exactly without 9-digit noise."""
    result.sparse = result.sparse or sp.issparse(features)
    result.feature_dim = features.shape[1]
    result.labeled = labels is not None
    for start in range(0, features.shape[0], CSV_ROWS_PER_WRITE):
        part = features[start : start + CSV_ROWS_PER_WRITE]
        text = (np.asarray(part.todense()) if sp.issparse(part) else part).astype(str)
        if labels is not None:
            text = np.hstack([labels[start : start + CSV_ROWS_PER_WRITE].astype(str).reshape(-1, 1), text])
        out.write("".join(",".join(row) + "\n" for row in text.tolist()))
    result.rows += features.shape[0]


def convert(src, dst=None, label_column: int | None = 0) -> ConvertResult:
    """Convert ``src`` by its kind: RecordIO-protobuf -> CSV; CSV, .npy, .npz -> RecordIO-protobuf.

    ``label_column``: which input column is the label (default 0, the first); None for no label.
    """
    src = Path(src)
    if not src.is_file():
        raise CustomerError(f"{src} is not a file.")
    recordio = _is_recordio(src)
    dst = Path(dst) if dst else src.with_suffix(".csv" if recordio else RECORDIO_SUFFIX)
    if dst.resolve() == src.resolve():
        raise CustomerError(f"The output {dst} would overwrite the input; pass --output.")
    if recordio:
        return _to_csv(src, dst)
    matrices = _npy_matrices(src) if src.suffix in (".npy", ".npz") else _csv_matrices(src)
    result = ConvertResult(str(src), str(dst), "to-recordio")
    with _atomic_output(dst, "wb") as out:
        for matrix, where in matrices:
            features, labels = _split_label(matrix, label_column, str(src))
            _check_finite(features, labels, where)
            _write_recordio(out, features, labels, result)
    return result


# ------------------------------------------------------------------------------------------ inspect
@dataclass
class FileReport:
    path: str
    format: str  # recordio-protobuf | csv | unknown
    bytes: int
    records: int = 0
    feature_dims: list[int] = field(default_factory=list)
    dense_records: int = 0
    sparse_records: int = 0
    feature_dtypes: list[str] = field(default_factory=list)
    labeled_records: int = 0
    label_dtypes: list[str] = field(default_factory=list)
    first_nan: str | None = None
    error: str | None = None  # the first bad record, with its byte offset or line


@dataclass
class InspectReport:
    path: str
    files: list[FileReport]

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def feature_dims(self) -> list[int]:
        return sorted({d for f in self.files for d in f.feature_dims})

    @property
    def ok(self) -> bool:
        return all(f.error is None and f.first_nan is None for f in self.files)

    def to_dict(self) -> dict:
        return {"path": self.path, "records": self.records, "feature_dims": self.feature_dims, "ok": self.ok,
                "files": [asdict(f) for f in self.files]}


def _add(values: list, value) -> None:
    if value not in values:
        values.append(value)
        values.sort()


def _inspect_recordio(path: Path, report: FileReport) -> None:
    with open(path, "rb") as f:
        try:
            for frames in iter_frames(read_chunks(f), source=str(path)):
                if not _inspect_frames(report, frames):
                    return
        except DataFormatError as exc:
            report.error = str(exc)


def _inspect_frames(report: FileReport, frames) -> bool:
    """Account for one run of records; False after recording the first bad one."""
    decoded = decode_fixed_block(frames.payloads, cast=False) if isinstance(frames, FixedRun) else None
    if decoded is not None:
        _note_nan(report, *decoded, frames)
        _count(report, len(frames), *decoded)
        return True
    for index, payload in enumerate(frames.to_bytes()):
        try:
            features, labels = decode_records([payload], cast=False)  # native dtypes: what the record holds
        except RecordDecodeError as exc:
            report.error = f"record #{report.records} at byte offset {frames.record_offset(index)} {exc.detail}"
            return False
        _note_nan(report, features, labels, frames, index)
        _count(report, 1, features, labels)
    return True


def _count(report: FileReport, n: int, features, labels) -> None:
    """Account for ``n`` decoded records of one kind (``features``: their rows, dense or CSR)."""
    report.records += n
    if sp.issparse(features):
        report.sparse_records += n
    else:
        report.dense_records += n
    _add(report.feature_dims, features.shape[1])
    _add(report.feature_dtypes, str(features.dtype))
    if labels is not None:
        report.labeled_records += n
        _add(report.label_dtypes, str(labels.dtype))


def _note_nan(report: FileReport, features, labels, frames, base: int = 0) -> None:
    """Remember the first record holding a NaN (``base``: index of ``features``' row 0 in ``frames``)."""
    if report.first_nan is not None:
        return
    row = first_nan_row(features, labels)
    if row is not None:
        report.first_nan = f"record #{report.records + row} at byte offset {frames.record_offset(base + row)}"


def _inspect_csv(path: Path, report: FileReport) -> None:
    try:
        with open(path, "rb") as f:
            for block in iter_csv_blocks(f, str(path)):
                _csv_block(report, block)
    except MissingValueError as exc:
        report.first_nan = report.first_nan or f"line {exc.line} column {exc.column} (empty cell)"
    except DataFormatError as exc:
        report.error = str(exc)


def _csv_block(report: FileReport, block) -> None:
    row = first_nan(block.values)
    if row is not None and report.first_nan is None:
        report.first_nan = f"line {int(block.lines[row])}"
    report.records += block.values.shape[0]
    report.dense_records += block.values.shape[0]
    _add(report.feature_dims, block.values.shape[1])
    _add(report.feature_dtypes, "float32")


def inspect_file(path) -> FileReport:
    path = Path(path)
    report = FileReport(str(path), "unknown", path.stat().st_size)
    if report.bytes == 0:
        report.error = "empty file"
        return report
    if _is_recordio(path):
        report.format = "recordio-protobuf"
        _inspect_recordio(path, report)
        return report
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"\0" in head or not any(ch in b"0123456789" for ch in head):
        report.error = ("neither RecordIO-protobuf (the first 4 bytes are not the magic 0xCED7230A) "
                        "nor numeric CSV")
        return report
    report.format = "csv"
    _inspect_csv(path, report)
    return report


def inspect(path) -> InspectReport:
    """Inspect a file, or every non-hidden file under a directory (the channel rule)."""
    path = Path(path)
    if path.is_dir():
        return InspectReport(str(path), [inspect_file(p) for p in data_files(path)])
    if not path.exists():
        raise CustomerError(f"{path} does not exist.")
    return InspectReport(str(path), [inspect_file(path)])


def _file_lines(f: FileReport) -> list[str]:
    dims = ", ".join(map(str, f.feature_dims)) or "-"
    layout = "mixed" if f.dense_records and f.sparse_records else ("sparse" if f.sparse_records else "dense")
    lines = [f"{f.path}", f"  format:        {f.format} ({f.bytes} bytes)", f"  records:       {f.records}"]
    if f.records:
        labels = (f"{f.labeled_records} of {f.records} labeled ({', '.join(f.label_dtypes)})" if f.labeled_records
                  else "none")
        if f.format == "csv":
            labels = "first column when label_size=1 (text/csv has no label marker)"
        lines += [f"  feature dim:   {dims}" + ("  (CSV columns, label column included)" if f.format == "csv" else ""),
                  f"  layout:        {layout}",
                  f"  feature dtype: {', '.join(f.feature_dtypes)}",
                  f"  labels:        {labels}"]
    if f.first_nan:
        lines.append(f"  first NaN:     {f.first_nan}")
    lines.append(f"  first error:   {f.error}" if f.error else "  errors:        none")
    return lines


def format_report(report: InspectReport) -> str:
    lines = []
    for f in report.files:
        lines += _file_lines(f)
    if len(report.files) != 1:
        dims = ", ".join(map(str, report.feature_dims)) or "-"
        lines.append(f"total: {len(report.files)} files, {report.records} records, feature dims {dims}, "
                     f"{'OK' if report.ok else 'PROBLEMS FOUND'}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ CLI
def _run_convert(args: argparse.Namespace) -> int:
    label = None if args.no_label else args.label_column
    print(convert(args.source, args.output, label_column=label).summary())
    return 0


def _run_inspect(args: argparse.Namespace) -> int:
    report = inspect(args.path)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 2


def add_commands(subparsers) -> None:
    """Register ``convert`` and ``inspect`` on an argparse subparsers object.

    Each sets ``handler(args) -> exit code``; bad input raises ``CustomerError`` (exit 2) for cli.main to map.
    """
    conv = subparsers.add_parser(
        "convert", help="convert CSV/.npy/.npz to RecordIO-protobuf, or RecordIO-protobuf to CSV",
        description="CSV, .npy or .npz (dense, or scipy.sparse.save_npz) -> float32 RecordIO-protobuf; "
                    "RecordIO-protobuf -> CSV with the label first. The direction follows the input.")
    conv.add_argument("source", help="input file")
    conv.add_argument("--output", "-o", help="output file (default: the input with .recordio or .csv)")
    group = conv.add_mutually_exclusive_group()
    group.add_argument("--label-column", type=int, default=0, metavar="N",
                       help="input column holding the label (default 0, the first; negative counts from the end)")
    group.add_argument("--no-label", action="store_true", help="the input has no label column")
    conv.set_defaults(handler=_run_convert)

    insp = subparsers.add_parser(
        "inspect", help="report what a data file or directory holds and its first bad record",
        description="Records, feature dimension, dense/sparse, dtypes, labels, the first NaN and the first bad "
                    "record (with its byte offset or line) of a RecordIO-protobuf or CSV file, or of every "
                    "non-hidden file under a directory. Exits 2 when a problem is found.")
    insp.add_argument("path", help="file or directory")
    insp.add_argument("--json", action="store_true", help="print the report as JSON")
    insp.set_defaults(handler=_run_inspect)
