"""Training channels: File directories or Pipe FIFOs -> batches of numpy rows.

A channel's bytes are read as one stream, whatever the mode: in File mode every file under
``input/data/<channel>/`` (recursively, sorted, hidden names skipped) one after the other, as
SageMaker's Pipe mode concatenates S3 objects; in Pipe mode the FIFO ``input/data/<channel>_<epoch>``
(the paths SageMaker gives a training container: SageMaker developer guide, "How Amazon SageMaker
Provides Training Information").
So a RecordIO record cut by a file boundary or by a short read is simply completed by the next bytes.
Memory is bounded by the read chunk and the batch size, never by the dataset.
"""
from __future__ import annotations

import bisect
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np
import scipy.sparse as sp

from smlocal.data import csv_fast
from smlocal.data.csv import (
    NAN_MESSAGE,
    DEFAULT_CHUNK as CSV_CHUNK,
    CsvBlock,
    MissingValueError,
    check_label_size,
    first_nonfinite,
    iter_channel_blocks,
    nonfinite_message,
)
from smlocal.data.protobuf import RecordDecodeError, decode_fixed_block, decode_records
from smlocal.data.readahead import read_ahead
from smlocal.data.recordio import (
    DEFAULT_CHUNK,
    DataFormatError,
    FixedRun,
    FrameScanner,
    Frames,
    iter_records,
    read_chunks,
)
from smlocal.environment import CSV, RECORDIO_PROTOBUF, ChannelConfig, Paths, TrainingEnv
from smlocal.errors import CustomerError

SUPPORTED_CONTENT_TYPES = (RECORDIO_PROTOBUF, CSV)
PIPE_WAIT_ENV = "SMLOCAL_PIPE_WAIT_SECONDS"
DEFAULT_PIPE_WAIT = 600.0
PIPE_BUFFER = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def content_type_message(channel: str, content_type: str) -> str:
    """The built-ins' canonical message for data that does not match its content type.

    Worded as the built-ins' shared algorithm SDK words it; a public copy of that SDK's errors is in
    aws/sagemaker-rl-container, ``src/vw-serving/src/vw_serving/sagemaker/exceptions.py``.
    """
    return (
        f"Unable to read data channel '{channel}'. Requested content-type is '{content_type}'. "
        "Please verify the data matches the requested content-type."
    )


@dataclass
class Batch:
    """Up to ``batch_size`` rows: float32 features (n, d) ndarray or CSR; float32 labels (n,) or None."""

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray | None

    def __len__(self) -> int:
        return self.features.shape[0]


@dataclass
class _Piece:
    """Decoded rows plus where they came from, for messages."""

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray | None
    where: Callable[[int], str]  # row index -> "file 'x' line 3" / "file 'x', record at byte offset 96"
    cell: Callable[[int | None], str]  # feature index (None: the label) -> "column 4" / "feature 3"


def first_nonfinite_cell(features, labels) -> tuple[int, int | None, float] | None:
    """(row, feature index or None for the label, value) of the first NaN or infinite value, or None."""
    found = []
    if sp.issparse(features):
        if features.dtype.kind == "f" and features.nnz and not (
                np.isfinite(features.data.min()) and np.isfinite(features.data.max())):
            k = int(np.flatnonzero(~np.isfinite(features.data))[0])
            row = int(np.searchsorted(features.indptr, k, side="right")) - 1
            found.append((row, int(features.indices[k]), float(features.data[k])))
    elif features.size and features.dtype.kind == "f":
        cell = first_nonfinite(features)
        if cell is not None:
            found.append((cell[0], cell[1], float(features[cell])))
    if labels is not None and labels.dtype.kind == "f":
        cell = first_nonfinite(labels.reshape(-1, 1))
        if cell is not None:
            found.append((cell[0], None, float(labels[cell[0]])))
    return min(found, key=lambda cell: cell[0]) if found else None


def _recordio_cell(feature: int | None) -> str:
    return "label" if feature is None else f"feature {feature}"


def _concat(features: list, labels: list) -> Batch:
    if len(features) == 1:
        feats = features[0]
    elif any(sp.issparse(f) for f in features):
        feats = sp.vstack([sp.csr_matrix(f) for f in features], format="csr")
    else:
        feats = np.concatenate(features)
    labs = None if labels[0] is None else (labels[0] if len(labels) == 1 else np.concatenate(labels))
    return Batch(feats, labs)


def rebatch(pieces: Iterable[tuple], batch_size: int) -> Iterator[Batch]:
    """Regroup ``(features, labels)`` pieces of any sizes into batches of exactly ``batch_size`` rows."""
    feats: list = []
    labs: list = []
    held = 0
    for features, labels in pieces:
        n, pos = features.shape[0], 0
        while pos < n:
            if held == 0 and n - pos >= batch_size:  # whole batch inside one piece: a view, no copy
                stop = pos + batch_size
                yield Batch(features[pos:stop], None if labels is None else labels[pos:stop])
                pos += batch_size
                continue
            take = min(batch_size - held, n - pos)
            feats.append(features[pos : pos + take])
            labs.append(None if labels is None else labels[pos : pos + take])
            held += take
            pos += take
            if held == batch_size:
                yield _concat(feats, labs)
                feats, labs, held = [], [], 0
    if held:
        yield _concat(feats, labs)


class _Stream:
    """Several sources read as one byte stream; maps stream offsets back to (source, local offset)."""

    def __init__(self, sources: Iterable[tuple[str, BinaryIO]], chunk_size: int):
        self._sources = sources
        self._chunk_size = chunk_size
        self._starts: list[int] = []
        self._names: list[str] = []

    def locate(self, offset: int) -> tuple[str, int]:
        i = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        return self._names[i], offset - self._starts[i]

    def chunks(self) -> Iterator[bytes]:
        offset = 0
        for name, stream in self._sources:
            self._starts.append(offset)
            self._names.append(name)
            for chunk in read_chunks(stream, self._chunk_size):
                offset += len(chunk)
                yield chunk


def data_files(root: Path) -> list[Path]:
    """The channel rule: every non-hidden regular file under ``root``, recursively, sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if not name.startswith(".") and path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def wait_for_fifo(path: Path, channel: str, epoch: int, timeout: float | None = None) -> None:
    """Poll until the epoch's FIFO appears (the feeder may create it later); CustomerError on timeout."""
    if timeout is None:
        raw = os.environ.get(PIPE_WAIT_ENV, "")
        try:
            timeout = float(raw) if raw else DEFAULT_PIPE_WAIT
        except ValueError:
            timeout = DEFAULT_PIPE_WAIT
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not path.exists():
        if time.monotonic() >= deadline:
            raise CustomerError(
                f"Pipe mode channel '{channel}': the FIFO {path} for epoch {epoch} did not appear within "
                f"{timeout:g} seconds. Check that the channel is fed in Pipe mode (one FIFO {channel}_<epoch> per "
                f"epoch) or set {PIPE_WAIT_ENV} to wait longer."
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _grow_pipe(stream: BinaryIO, size: int = PIPE_BUFFER) -> None:
    """Ask for a larger FIFO buffer (Linux): fewer, larger reads and writer wake-ups. Best effort."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError):
        pass


class Channel:
    """One configured channel. ``batches(batch_size, epoch)`` streams it; ``feature_dim`` is set once seen."""

    def __init__(self, config: ChannelConfig, paths: Paths, chunk_size: int | None = None):
        self.config = config
        self.name = config.name
        self.paths = paths
        self.chunk_size = chunk_size or DEFAULT_CHUNK  # RecordIO reads
        self.csv_chunk_size = chunk_size or CSV_CHUNK  # CSV blocks: polars wants bigger ones
        self.feature_dim: int | None = None
        self.labeled: bool | None = None
        if config.content_type not in SUPPORTED_CONTENT_TYPES:
            raise CustomerError(
                content_type_message(self.name, config.content_type)
                + f" Supported content types: {', '.join(SUPPORTED_CONTENT_TYPES)}."
            )
        self.label_size = config.label_size(1) if config.is_csv else None

    @property
    def content_type(self) -> str:
        return self.config.content_type

    @property
    def is_pipe(self) -> bool:
        return self.config.is_pipe

    def files(self) -> list[Path]:
        """File mode: every non-hidden file under the channel directory, recursively, sorted by path."""
        root = self.paths.channel_dir(self.name)
        if not root.is_dir():
            raise CustomerError(
                f"No data found for channel '{self.name}': the directory {root} does not exist. "
                f"Provide the channel's files under input/data/{self.name}/."
            )
        found = data_files(root)
        if not found:
            raise CustomerError(
                f"No data found for channel '{self.name}': the directory {root} holds no files "
                "(hidden files are ignored)."
            )
        return found

    # ------------------------------------------------------------------ sources
    def _sources(self, epoch: int) -> Iterator[tuple[str, BinaryIO]]:
        if self.is_pipe:
            fifo = self.paths.pipe_path(self.name, epoch)
            wait_for_fifo(fifo, self.name, epoch)
            with open(fifo, "rb", buffering=0) as stream:
                _grow_pipe(stream)
                yield str(fifo), stream
            return
        for path in self.files():
            with open(path, "rb", buffering=0) as stream:
                yield str(path), stream

    # ------------------------------------------------------------------ decoding
    def _check_piece(self, piece: _Piece) -> tuple:
        features, labels = piece.features, piece.labels
        if features.shape[0] == 0:
            return features, labels
        dim = features.shape[1]
        if self.feature_dim is None:
            self.feature_dim = dim
        elif dim != self.feature_dim:
            raise CustomerError(
                f"{content_type_message(self.name, self.content_type)} {piece.where(0)} has {dim} features "
                f"but earlier data of the channel has {self.feature_dim}. Every row needs the same number of features."
            )
        if self.labeled is None:
            self.labeled = labels is not None
        elif self.labeled != (labels is not None):
            raise CustomerError(
                f"{content_type_message(self.name, self.content_type)} {piece.where(0)} is "
                f"{'labeled' if labels is not None else 'unlabeled'} but earlier data of the channel is not. "
                "Label every record or none."
            )
        bad = first_nonfinite_cell(features, labels)
        if bad is not None:
            row, column, value = bad
            where = piece.where(row) + ("" if np.isnan(value) else f", {piece.cell(column)}")
            raise CustomerError(f"Channel '{self.name}', {where}: {nonfinite_message(value)}")
        return features, labels

    def _recordio_pieces(self, epoch: int) -> Iterator[_Piece]:
        stream = _Stream(self._sources(epoch), self.chunk_size)

        def where(frames: Frames):
            def describe(index: int) -> str:
                source, offset = stream.locate(frames.record_offset(index))
                return f"file '{source}', record at byte offset {offset}"
            return describe

        scanner = FrameScanner(stream.locate)
        for chunk in stream.chunks():
            for frames in scanner.feed(chunk):
                decoded = decode_fixed_block(frames.payloads) if isinstance(frames, FixedRun) else None
                if decoded is None:
                    try:
                        decoded = decode_records(frames.to_bytes(), cast=True)
                    except RecordDecodeError as exc:
                        raise DataFormatError(f"{where(frames)(exc.index)} {exc.detail}") from None
                yield _Piece(decoded[0], decoded[1], where(frames), _recordio_cell)
        scanner.finish()

    def _csv_sources(self, epoch: int) -> Iterator[tuple[str, BinaryIO]]:
        """With RecordWrapperType=RecordIO each record of the stream holds one whole CSV object."""
        if self.config.record_wrapper.lower() != "recordio":
            yield from self._sources(epoch)
            return
        for source, stream in self._sources(epoch):
            for index, payload in enumerate(iter_records(stream, source, self.chunk_size)):
                yield f"{source} (RecordIO record {index})", io.BytesIO(payload)

    def _csv_pieces(self, epoch: int) -> Iterator[_Piece]:
        return self._csv_blocks(iter_channel_blocks(self._csv_sources(epoch), self.csv_chunk_size))

    def _csv_blocks(self, blocks: Iterable[CsvBlock]) -> Iterator[_Piece]:
        for block in blocks:
            check_label_size(block.columns, self.label_size, block.source)
            features, labels = block.split(self.label_size)
            yield _Piece(features, labels, lambda i, b=block: f"file '{b.source}' line {int(b.lines[i])}",
                         self._csv_cell)

    def _csv_cell(self, feature: int | None) -> str:
        """The file's 1-based column: the label is column 1 when label_size=1."""
        return "column 1" if feature is None else f"column {self.label_size + feature + 1}"

    def _checked_pieces(self, epoch: int) -> Iterator[tuple]:
        pieces = self._csv_pieces(epoch) if self.config.is_csv else self._recordio_pieces(epoch)
        return (self._check_piece(p) for p in pieces)

    def _read_ahead(self, epoch: int) -> Iterator[tuple]:
        """The pass's checked (features, labels) pieces, read, decoded and checked on a reader thread one
        piece ahead, so that parsing (polars and numpy release the GIL) overlaps the consumer's math.
        This is the one read-ahead of a training pass; a reader's error arrives where its piece would."""
        return read_ahead(lambda: self._checked_pieces(epoch), depth=1, name=f"smlocal-channel-{self.name}")

    def batches(self, batch_size: int, epoch: int = 0, read_ahead: bool = True) -> Iterator[Batch]:
        """Batches of exactly ``batch_size`` rows (the last may be shorter) for one pass over the data,
        read one piece ahead on a reader thread unless ``read_ahead`` is False (the pieces are then read
        in the consumer's thread, with the same checks and errors). CSV that polars parses needs no
        reader thread: its blocks are parsed ahead on a pool (``iter_channel_blocks``), and a thread more
        only made the threads contend (measured: 3.2 s of CPU against 2.5 s for the 1M x 51 file)."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        rows = 0
        if self.config.is_csv and csv_fast.available():
            read_ahead = False
        pieces = self._read_ahead(epoch) if read_ahead else self._checked_pieces(epoch)
        try:
            for batch in rebatch(pieces, batch_size):
                rows += len(batch)
                yield batch
        except MissingValueError as exc:
            where = f"file '{exc.source}' line {exc.line} column {exc.column}"
            raise CustomerError(f"Channel '{self.name}', {where} is empty: {NAN_MESSAGE}") from None
        except DataFormatError as exc:
            raise CustomerError(f"{content_type_message(self.name, self.content_type)} Problem: {exc}") from None
        finally:
            pieces.close()  # a consumer that stops early also stops the reader thread, now
        if rows == 0:
            where = f"the FIFO {self.paths.pipe_path(self.name, epoch)}" if self.is_pipe else \
                f"the files under {self.paths.channel_dir(self.name)}"
            raise CustomerError(f"Channel '{self.name}' holds no records: {where} contain no data.")


def open_channel(env: TrainingEnv, name: str, chunk_size: int | None = None) -> Channel:
    """The channel ``name`` of ``env``; CustomerError if it is not configured or (File mode) has no files."""
    config = env.channels.get(name)
    if config is None:
        configured = ", ".join(sorted(env.channels)) or "none"
        raise CustomerError(
            f"Channel '{name}' is required but not provided (configured channels: {configured}). "
            f"Add a '{name}' channel to the training job's input data."
        )
    channel = Channel(config, env.paths, chunk_size)
    if not channel.is_pipe:
        channel.files()
    return channel
