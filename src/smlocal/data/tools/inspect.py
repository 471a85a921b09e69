"""``smlocal inspect``: what a RecordIO-protobuf or CSV file, or a channel directory, holds.

Records, feature dimensions, dense/sparse, dtypes, labels, the first NaN, the first infinite value and
the first bad record (with its byte offset or line), read in chunks like a channel reads them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from smlocal.data.channels import data_files
from smlocal.data.csv import MissingValueError, iter_csv_blocks
from smlocal.data.protobuf import RecordDecodeError, decode_fixed_block, decode_records
from smlocal.data.recordio import DataFormatError, FixedRun, is_recordio_file, iter_frames, read_chunks
from smlocal.errors import CustomerError


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
    first_infinite: str | None = None
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
        return all(f.error is None and f.first_nan is None and f.first_infinite is None for f in self.files)

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


def _first_cell(test, features, labels) -> tuple[int, int | None] | None:
    """(row, feature index or None for the label) of the first value where ``test`` (np.isnan or
    np.isinf) holds, or None."""
    found = []
    if features.dtype.kind == "f":
        if sp.issparse(features):
            hits = np.flatnonzero(test(features.data))
            if hits.size:
                k = int(hits[0])
                found.append((int(np.searchsorted(features.indptr, k, side="right")) - 1, int(features.indices[k])))
        else:
            rows, cols = np.nonzero(test(features))
            if rows.size:
                found.append((int(rows[0]), int(cols[0])))
    if labels is not None and labels.dtype.kind == "f":
        hits = np.flatnonzero(test(labels))
        if hits.size:
            found.append((int(hits[0]), None))
    return min(found, key=lambda cell: cell[0]) if found else None


def _note_nonfinite(report: FileReport, features, labels, where) -> None:
    """Remember the first NaN and the first infinite value; ``where(row, feature, is_nan)`` words the place."""
    for attribute, test in (("first_nan", np.isnan), ("first_infinite", np.isinf)):
        if getattr(report, attribute) is None:
            cell = _first_cell(test, features, labels)
            if cell is not None:
                setattr(report, attribute, where(*cell, test is np.isnan))


def _note_nan(report: FileReport, features, labels, frames, base: int = 0) -> None:
    """The first NaN and infinite records (``base``: index of ``features``' row 0 in ``frames``)."""
    _note_nonfinite(report, features, labels, lambda row, _, __: (
        f"record #{report.records + row} at byte offset {frames.record_offset(base + row)}"))


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
    _note_nonfinite(report, block.values, None, lambda row, column, is_nan: (
        f"line {int(block.lines[row])}" + ("" if is_nan else f" column {column + 1}")))
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
    if is_recordio_file(path):
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
    if f.first_infinite:
        lines.append(f"  first infinite value: {f.first_infinite}")
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
