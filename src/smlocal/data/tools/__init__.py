"""The data tools for users, ``smlocal convert`` and ``smlocal inspect``: their CLI and Python API.

``convert`` turns CSV / ``.npy`` / ``.npz`` into RecordIO-protobuf and back; ``inspect`` reports what a
file or directory holds. Both stream, so files larger than memory work.
"""
from __future__ import annotations

import argparse
import json

from smlocal.data.tools.convert import ConvertResult, convert, convert_arrays
from smlocal.data.tools.inspect import FileReport, InspectReport, format_report, inspect, inspect_file

__all__ = [
    "ConvertResult",
    "FileReport",
    "InspectReport",
    "add_commands",
    "convert",
    "convert_arrays",
    "format_report",
    "inspect",
    "inspect_file",
]


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
