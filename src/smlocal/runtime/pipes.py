"""Pipe mode: stream a channel's files into FIFOs ``input/data/<channel>_<epoch>``, as SageMaker does.

For each epoch the feeder creates the FIFO, waits for the algorithm to open it, writes this host's
files one after the other (decompressed for CompressionType=Gzip, each wrapped as one RecordIO record
for RecordWrapperType=RecordIO, in a per-epoch shuffled order with ShuffleConfig.Seed), closes it and
creates the next epoch's FIFO. Data is streamed in chunks and never copied to disk; plain local files
are spliced from the page cache into the pipe by the kernel. A reader that
closes early just ends that epoch. ``stop()`` ends the feeder promptly whatever state it is in: it
never blocks in open() or write() (non-blocking descriptors polled with a timeout), so no writer is
left behind when the job ends.
"""
from __future__ import annotations

import errno
import gzip
import logging
import os
import select
import stat
import threading
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows has no FIFOs anyway
    fcntl = None

from smlocal.errors import CustomerError
from smlocal.runtime.plan import DataObject, PipeFeed

log = logging.getLogger("smlocal.runtime")

CHUNK = 1 << 20  # bytes per read/write; memory per feeder stays about this
PIPE_BUFFER = 1 << 20  # requested FIFO buffer size
POLL_S = 0.1  # how often a waiting feeder checks whether it should stop
MAX_WRAPPED = (1 << 29) - 1  # one RecordIO record holds at most 2^29 - 1 bytes
GZIP_HINT = "Compress every file of the channel with gzip, or set CompressionType to None."


def unreadable(obj: DataObject, exc: OSError) -> CustomerError:
    """A channel file that was listed when the job started but is gone (or unreadable) when fed."""
    return CustomerError(f"Channel file '{obj.path}' disappeared or could not be read during the job "
                         f"({exc.strerror or exc}). Keep a channel's files in place until the job ends.")


def open_source(obj: DataObject) -> BinaryIO:
    try:
        return obj.open()
    except OSError as exc:
        raise unreadable(obj, exc) from None


def read_object(obj: DataObject, compression: str, chunk: int = CHUNK) -> Iterator[bytes]:
    """The bytes of one channel file, decompressed if the channel says Gzip."""
    with open_source(obj) as raw:
        try:
            source = gzip.GzipFile(fileobj=raw, mode="rb") if compression == "Gzip" else raw
            while data := source.read(chunk):
                yield data
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise CustomerError(
                f"File '{obj.path}' of a CompressionType=Gzip channel is not valid gzip ({exc}). {GZIP_HINT}"
            ) from None
        except OSError as exc:
            raise unreadable(obj, exc) from None


def object_stream(obj: DataObject, compression: str, record_wrapper: str, chunk: int = CHUNK) -> Iterator[bytes]:
    """What the FIFO carries for one file: its bytes, or one RecordIO record holding them."""
    if record_wrapper != "RecordIO":
        yield from read_object(obj, compression, chunk)
        return
    from smlocal.data.recordio import frame

    parts, size = [], 0
    for data in read_object(obj, compression, chunk):
        size += len(data)
        if size > MAX_WRAPPED:
            raise CustomerError(
                f"File '{obj.path}' is larger than a RecordIO record can hold (2^29 - 1 bytes) and cannot be "
                "wrapped with RecordWrapperType=RecordIO. Split it into smaller files."
            )
        parts.append(data)
    yield frame(b"".join(parts))


class PipeFeeder(threading.Thread):
    """One channel of one host. ``on_bytes(n)`` is called as data goes out (progress display),
    ``on_epoch(feed, epoch, n)`` when an epoch's pipe is closed after ``n`` bytes."""

    def __init__(self, feed: PipeFeed, on_bytes: Callable[[int], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None, chunk: int = CHUNK,
                 on_epoch: Callable[[PipeFeed, int, int], None] | None = None):
        super().__init__(name=f"pipe-{feed.channel}-{Path(feed.fifo_dir).parent.parent.name}", daemon=True)
        self.feed = feed
        self.chunk = chunk
        self._stop_event = threading.Event()
        self._on_bytes = on_bytes or (lambda n: None)
        self._on_error = on_error
        self._on_epoch = on_epoch or (lambda feed, epoch, n: None)
        self.epochs_done = 0
        self.bytes_written = 0
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        epoch = 0
        try:
            while not self.stopping:
                path = self.feed.fifo_path(epoch)
                _make_fifo(path)
                try:
                    fd = self._open_writer(path)
                    if fd is None:
                        return
                    try:
                        before = self.bytes_written
                        if self._write_epoch(fd, epoch):
                            self.epochs_done += 1
                            self._on_epoch(self.feed, epoch, self.bytes_written - before)
                    except BaseException as exc:  # noqa: BLE001
                        self._fail(exc)  # before the close: the reader's end of data must not come first
                        raise
                    finally:
                        os.close(fd)
                finally:
                    _unlink(path)  # the reader keeps its descriptor; the name is no longer needed
                epoch += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the job, which stops the container
            self._fail(exc)
        finally:
            _unlink(self.feed.fifo_path(epoch))

    def _fail(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = exc
        log.error("Pipe feeder for channel '%s' failed: %s", self.feed.channel, exc)
        if self._on_error is not None:
            self._on_error(exc)

    def _open_writer(self, path: Path) -> int | None:
        """Open the FIFO for writing once a reader has it open; None if stopped meanwhile."""
        while not self.stopping:
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            self._stop_event.wait(POLL_S)
        return None

    def _write_epoch(self, fd: int, epoch: int) -> bool:
        """Write one epoch; False if stopped before the end. A reader closing early ends it too."""
        _grow_pipe(fd)
        poller = select.poll()
        poller.register(fd, select.POLLOUT | select.POLLERR)
        try:
            for obj in self.feed.objects_for_epoch(epoch):
                if _can_splice(obj, self.feed):
                    done = self._splice_file(fd, obj, poller)
                else:
                    done = self._write_chunks(fd, object_stream(obj, self.feed.compression, self.feed.record_wrapper,
                                                                self.chunk), poller)
                if not done:
                    return False
        except BrokenPipeError:
            pass  # the algorithm closed the pipe early: this epoch is over
        return True

    def _sent(self, count: int) -> None:
        self.bytes_written += count
        self._on_bytes(count)

    def _write_chunks(self, fd: int, chunks: Iterator[bytes], poller) -> bool:
        for data in chunks:
            view = memoryview(data)
            while view:
                if self.stopping:
                    return False
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    poller.poll(POLL_S * 1000)
                    continue
                self._sent(written)
                view = view[written:]
        return True

    def _splice_file(self, fd: int, obj: DataObject, poller) -> bool:
        """A plain local file moves from the page cache into the pipe inside the kernel (no copy
        through Python): this is most of Pipe mode's traffic."""
        with open_source(obj) as src:
            while True:
                if self.stopping:
                    return False
                try:
                    moved = os.splice(src.fileno(), fd, self.chunk, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    poller.poll(POLL_S * 1000)
                    continue
                if moved == 0:
                    return True
                self._sent(moved)


_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)


def _can_splice(obj: DataObject, feed: PipeFeed) -> bool:
    return (hasattr(os, "splice") and obj.opener is None and feed.compression == "None"
            and feed.record_wrapper == "None")


def _grow_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; the default 64 KiB costs a context switch per 64 KiB)."""
    size_op = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if size_op is None:
        return
    for size in (PIPE_BUFFER, 256 * 1024):
        try:
            fcntl.fcntl(fd, size_op, size)
            return
        except OSError:  # above /proc/sys/fs/pipe-max-size or the user's pipe quota: keep the default
            continue


def _make_fifo(path: Path) -> None:
    try:
        if stat.S_ISFIFO(os.stat(path).st_mode):
            return
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o644)


def _unlink(path: Path) -> None:
    try:
        if stat.S_ISFIFO(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


class PipeSet:
    """All feeders of a job: start together, stop together."""

    def __init__(self, feeds: list[PipeFeed], on_bytes: Callable[[int], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 on_epoch: Callable[[PipeFeed, int, int], None] | None = None):
        self.feeders = [PipeFeeder(f, on_bytes, on_error, on_epoch=on_epoch) for f in feeds]

    def start(self) -> "PipeSet":
        for feeder in self.feeders:
            feeder.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for feeder in self.feeders:
            feeder.stop()
        for feeder in self.feeders:
            feeder.join(timeout)

    @property
    def error(self) -> BaseException | None:
        return next((f.error for f in self.feeders if f.error is not None), None)

    def __enter__(self) -> "PipeSet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
