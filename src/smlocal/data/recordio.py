"""MXNet/dmlc RecordIO framing, read and written without MXNet.

The format of dmlc-core's ``include/dmlc/recordio.h``::

    record := u32 magic 0xCED7230A | u32 lrec | payload part | zero padding to a 4-byte boundary
    lrec   := cflag << 29 | length

cflag is not a "large record" flag: dmlc's writer splits a payload at every 4-byte-aligned occurrence
of the magic number and drops the magic there (1 = first part, 2 = middle, 3 = last, 0 = whole
record), so that a reader that re-synchronises on the magic never lands inside a payload. The reader
re-inserts the magic between parts. We do both, so dmlc/MXNet and we read each other's streams.

Reading is vectorised: a run of records with the same header (the common case: dense rows of one
width) is found with numpy over the whole buffer and handed on as one ``(n, length)`` uint8 array,
with no Python work per record. Anything else goes record by record.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, Union

import numpy as np

from smlocal.errors import CustomerError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1
MAX_RECORD = 1 << 29
_HEADER = struct.Struct("<II")
_U4 = np.dtype("<u4")
DEFAULT_CHUNK = 8 << 20  # bytes read at a time: large enough to amortise numpy call overhead


class DataFormatError(CustomerError):
    """The bytes of a data file do not match their format. Channels prefix it with the channel message."""


def pad4(length: int) -> int:
    """Size of ``length`` bytes rounded up to the 4-byte boundary RecordIO pads to."""
    return (length + 3) & ~3


def is_recordio_file(path) -> bool:
    """Whether the file at ``path`` starts with the RecordIO magic."""
    with open(path, "rb") as f:
        return f.read(4) == MAGIC_BYTES


def _lrec(cflag: int, length: int) -> int:
    return (cflag << 29) | length


def _locate_default(source: str) -> Callable[[int], tuple[str, int]]:
    return lambda offset: (source, offset)


# --------------------------------------------------------------------------------------------- writing
def _aligned_magic_positions(payload: bytes) -> list[int]:
    """4-byte-aligned offsets of the magic inside ``payload`` (where dmlc's writer splits)."""
    usable = len(payload) & ~3
    if usable == 0 or MAGIC_BYTES not in payload:  # cheap C-level scan first: almost always absent
        return []
    words = np.frombuffer(payload, dtype=_U4, count=usable // 4)
    return [int(i) * 4 for i in np.flatnonzero(words == MAGIC)]


def frame(payload: bytes) -> bytes:
    """The RecordIO bytes of one record, split exactly as dmlc's ``RecordIOWriter::WriteRecord`` does."""
    payload = bytes(payload)
    length = len(payload)
    if length >= MAX_RECORD:
        raise CustomerError(f"A RecordIO record must be smaller than 2^29 bytes; this one has {length} bytes.")
    out = []
    start = 0
    for pos in _aligned_magic_positions(payload):
        # Parts before the last are 4-byte multiples (both ends aligned), so they need no padding.
        out.append(_HEADER.pack(MAGIC, _lrec(1 if start == 0 else 2, pos - start)))
        out.append(payload[start:pos])
        start = pos + 4
    out.append(_HEADER.pack(MAGIC, _lrec(3 if start else 0, length - start)))
    out.append(payload[start:])
    out.append(b"\0" * (pad4(length) - length))
    return b"".join(out)


def write_record(stream: BinaryIO, payload: bytes) -> None:
    """Append one record to ``stream``."""
    stream.write(frame(payload))


def encode_block(block: np.ndarray) -> bytes:
    """Frame every row of a ``(n, length)`` uint8 array of equal-length payloads, vectorised.

    Falls back to per-record framing when a row holds an aligned magic (then it must be split).
    """
    n, length = block.shape
    words = length // 4
    if words and n and (np.ascontiguousarray(block[:, : words * 4]).view(_U4) == MAGIC).any():
        return b"".join(frame(row.tobytes()) for row in block)
    out = np.zeros((n, 8 + pad4(length)), dtype=np.uint8)
    out[:, :8] = np.frombuffer(_HEADER.pack(MAGIC, length), dtype=np.uint8)
    out[:, 8 : 8 + length] = block
    return out.tobytes()


def encode_records(payloads: Iterable[bytes]) -> bytes:
    """The RecordIO bytes of ``payloads`` (vectorised when they all have the same length)."""
    payloads = list(payloads)
    if len(payloads) > 1 and len(set(map(len, payloads))) == 1:
        block = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), -1)
        return encode_block(block)
    return b"".join(frame(p) for p in payloads)


# --------------------------------------------------------------------------------------------- reading
@dataclass
class FixedRun:
    """Consecutive whole records of one length: ``payloads[i]`` starts at ``offset + i * stride + 8``."""

    offset: int  # stream offset of the first record's header
    stride: int
    payloads: np.ndarray  # (n, length) uint8, read-only view into the read buffer

    def __len__(self) -> int:
        return self.payloads.shape[0]

    def record_offset(self, index: int) -> int:
        return self.offset + index * self.stride

    def to_bytes(self) -> list[bytes]:
        length = self.payloads.shape[1]
        data = np.ascontiguousarray(self.payloads).tobytes()
        return [data[i : i + length] for i in range(0, len(data), length)] if length else [b""] * len(self)


@dataclass
class VarRecords:
    """Records taken one by one (varying lengths, continuation parts)."""

    offsets: list[int]  # stream offset of each record's first header
    payloads: list[bytes]

    def __len__(self) -> int:
        return len(self.payloads)

    def record_offset(self, index: int) -> int:
        return self.offsets[index]

    def to_bytes(self) -> list[bytes]:
        return self.payloads


Frames = Union[FixedRun, VarRecords]


class FrameScanner:
    """Incremental RecordIO parser over a byte stream delivered in arbitrary chunks.

    ``feed(chunk)`` returns the records completed so far as ``FixedRun``/``VarRecords`` in stream
    order; a record cut by a chunk (or file) boundary waits for the next chunk. ``finish()`` raises if
    the stream ended inside a record. ``locate(offset) -> (source, offset in source)`` names the file
    in error messages when the stream is several files joined.
    """

    MIN_RUN = 4  # records with equal headers before trying the vectorised path

    def __init__(self, locate: Callable[[int], tuple[str, int]] | None = None, source: str = "<stream>"):
        self._locate = locate or _locate_default(source)
        self._buf = b""
        self._base = 0  # stream offset of self._buf[0]

    def _where(self, offset: int) -> str:
        source, local = self._locate(offset)
        return f"'{source}' at byte offset {local}"

    def _bad_magic(self, offset: int, magic: int | bytes) -> DataFormatError:
        found = f"0x{magic:08X}" if isinstance(magic, int) else f"the bytes {magic!r}"
        return DataFormatError(
            f"Invalid RecordIO data in {self._where(offset)}: expected the magic number 0x{MAGIC:08X}, "
            f"found {found}. The file is not RecordIO(-protobuf) or is corrupt."
        )

    def feed(self, chunk: bytes) -> list[Frames]:
        out: list[Frames] = []
        chunk = bytes(chunk)
        start = self._complete_seam(chunk, out)
        if start is None:  # rare: a split header or continuation parts; join and rescan
            buf, start = self._buf + chunk, 0
        else:
            buf = chunk
        pos = self._scan(buf, out, start)
        self._base += pos
        self._buf = buf[pos:]
        return out

    def _complete_seam(self, chunk: bytes, out: list[Frames]) -> int | None:
        """Finish the record cut by the previous chunk with the start of ``chunk``, without copying all
        of ``chunk`` onto the leftover. Returns where scanning of ``chunk`` resumes, or None."""
        if not self._buf:
            return 0
        if len(self._buf) < 8:
            return None
        magic, lrec = _HEADER.unpack_from(self._buf, 0)
        if magic != MAGIC or lrec >> 29:
            return None
        need = 8 + pad4(lrec & LENGTH_MASK) - len(self._buf)
        if need > len(chunk):
            return None
        seam = self._buf + chunk[:need]
        out.append(VarRecords([self._base], [seam[8 : 8 + (lrec & LENGTH_MASK)]]))
        self._base += len(seam) - need  # the stream offset of chunk[0]
        self._buf = b""
        return need

    def finish(self) -> None:
        if not self._buf:
            return
        offset, have = self._base, len(self._buf)
        if not MAGIC_BYTES.startswith(self._buf[:4]):  # a short non-RecordIO file: say so, not "truncated"
            head = self._buf[:4]
            raise self._bad_magic(offset, int.from_bytes(head, "little") if len(head) == 4 else head)
        if have < 8:
            raise DataFormatError(
                f"Truncated RecordIO record in {self._where(offset)}: the stream ends inside a record header "
                f"({have} of 8 bytes). The file is incomplete or not RecordIO."
            )
        magic, lrec = _HEADER.unpack_from(self._buf, 0)
        if magic != MAGIC:
            raise self._bad_magic(offset, magic)
        raise DataFormatError(
            f"Truncated RecordIO record in {self._where(offset)}: the record declares "
            f"{lrec & LENGTH_MASK} bytes (continuation flag {lrec >> 29}) but the stream ends after {have - 8}. "
            "The file is incomplete."
        )

    # The scan returns how far it consumed; whatever follows is an incomplete record.
    def _scan(self, buf: bytes, out: list[Frames], start: int = 0) -> int:
        pos, end = start, len(buf)
        var_offsets: list[int] = []
        var_payloads: list[bytes] = []

        def flush_var() -> None:
            if var_payloads:
                out.append(VarRecords(list(var_offsets), list(var_payloads)))
                var_offsets.clear()
                var_payloads.clear()

        while pos + 8 <= end:
            magic, lrec = _HEADER.unpack_from(buf, pos)
            if magic != MAGIC:
                flush_var()
                self._buf, self._base = buf[pos:], self._base + pos  # keep state consistent for finish()
                raise self._bad_magic(self._base, magic)
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            if cflag == 0:
                stride = 8 + pad4(length)
                if pos + stride > end:
                    break
                run = self._run_length(buf, pos, stride, lrec)
                if run >= self.MIN_RUN:
                    flush_var()
                    view = np.frombuffer(buf, dtype=np.uint8, count=run * stride, offset=pos)
                    out.append(FixedRun(self._base + pos, stride, view.reshape(run, stride)[:, 8 : 8 + length]))
                    pos += run * stride
                    continue
                var_offsets.append(self._base + pos)
                var_payloads.append(buf[pos + 8 : pos + 8 + length])
                pos += stride
                continue
            if cflag != 1:
                flush_var()
                self._buf, self._base = buf[pos:], self._base + pos
                raise DataFormatError(
                    f"Invalid RecordIO data in {self._where(self._base)}: continuation flag {cflag} without a "
                    "first part (flag 1). The file is corrupt."
                )
            joined = self._join_parts(buf, pos)
            if joined is None:
                break
            payload, nxt = joined
            var_offsets.append(self._base + pos)
            var_payloads.append(payload)
            pos = nxt
        flush_var()
        return pos

    def _run_length(self, buf: bytes, pos: int, stride: int, lrec: int) -> int:
        """How many records from ``pos`` on have this exact header (galloping, so cost ~ the run)."""
        avail = (len(buf) - pos) // stride
        if avail < self.MIN_RUN:
            return 1
        for k in range(1, self.MIN_RUN):  # cheap probe before building arrays
            if _HEADER.unpack_from(buf, pos + k * stride) != (MAGIC, lrec):
                return 1
        words = stride // 4
        run, window = 0, 64
        while run < avail:
            count = min(window, avail - run)
            heads = np.frombuffer(buf, dtype=_U4, count=count * words, offset=pos + run * stride)
            heads = heads.reshape(count, words)
            ok = (heads[:, 0] == MAGIC) & (heads[:, 1] == lrec)
            if ok.all():
                run += count
                window *= 2
                continue
            return run + int(np.argmin(ok))
        return run

    def _join_parts(self, buf: bytes, pos: int) -> tuple[bytes, int] | None:
        """Join continuation parts starting at ``pos`` (flag 1) as dmlc does; None if incomplete."""
        parts = []
        end = len(buf)
        cur = pos
        while True:
            if cur + 8 > end:
                return None
            magic, lrec = _HEADER.unpack_from(buf, cur)
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            if magic != MAGIC:
                self._buf, self._base = buf[cur:], self._base + cur
                raise self._bad_magic(self._base, magic)
            if cur != pos and cflag not in (2, 3):
                self._buf, self._base = buf[cur:], self._base + cur
                raise DataFormatError(
                    f"Invalid RecordIO data in {self._where(self._base)}: expected a continuation part "
                    f"(flag 2 or 3), found flag {cflag}. The file is corrupt."
                )
            stride = 8 + pad4(length)
            if cur + stride > end:
                return None
            parts.append(buf[cur + 8 : cur + 8 + length])
            cur += stride
            if cflag == 3:
                return MAGIC_BYTES.join(parts), cur


def iter_frames(chunks: Iterable[bytes], locate: Callable[[int], tuple[str, int]] | None = None,
                source: str = "<stream>") -> Iterator[Frames]:
    """Frames of a stream given as chunks; raises ``DataFormatError`` if it ends inside a record."""
    scanner = FrameScanner(locate, source)
    for chunk in chunks:
        yield from scanner.feed(chunk)
    scanner.finish()


def read_chunks(stream: BinaryIO, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """Read ``stream`` to EOF, gathering short reads (pipes return at most their buffer) into
    ~``chunk_size`` pieces."""
    parts: list[bytes] = []
    held = 0
    while True:
        data = stream.read(chunk_size - held)
        if not data:
            break
        parts.append(data)
        held += len(data)
        if held >= chunk_size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


def iter_records(stream: BinaryIO, source: str = "<stream>", chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """Every record payload of ``stream``, continuation parts joined with the magic re-inserted."""
    for frames in iter_frames(read_chunks(stream, chunk_size), source=source):
        yield from frames.to_bytes()
