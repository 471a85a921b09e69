"""The S3 download cache for File mode: parallel downloads into a local cache that repeated runs reuse.

The cache is keyed by URI: ``<cache_dir>/objects/<sha256("bucket/key")>`` holds the bytes and a
``.json`` beside it the object's URI, size and ETag. An object whose cached size and ETag match the
listing is not downloaded again (the SDK's local mode re-downloads every run). Each file appears
atomically (temp file + rename), so a crash or a parallel run never leaves a torn entry. Cached files
are read-only and are hard-linked (or copied, across file systems) into a host's channel directory.

Progress goes to a ``rich`` bar when stdout is a terminal and to plain log lines otherwise; any
callable ``progress(event, obj, nbytes)`` can replace both (see ``ProgressCallback``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Sequence

from smlocal.artifacts.files import atomic_write_bytes
from smlocal.errors import CustomerError, PlatformError
from smlocal.runtime.progress import human_bytes
from smlocal.runtime.s3.client import make_client
from smlocal.runtime.s3.errors import s3_errors
from smlocal.runtime.s3.objects import CHUNK, S3Object

log = logging.getLogger(__name__)

# progress(event, obj, nbytes). Events: "plan" (obj None, nbytes = bytes to download), "cached" (obj
# reused, nbytes = its size), "bytes" (nbytes more of obj arrived), "done" (obj downloaded, its size),
# "finish" (obj None, nbytes = bytes downloaded). Called from worker threads.
ProgressCallback = Callable[[str, "S3Object | None", int], None]


def default_cache_dir() -> Path:
    """``SMLOCAL_S3_CACHE``, else ``$XDG_CACHE_HOME/smlocal/s3``, else ``~/.cache/smlocal/s3``."""
    if os.environ.get("SMLOCAL_S3_CACHE"):
        return Path(os.environ["SMLOCAL_S3_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "smlocal" / "s3"


def cache_key(bucket: str, key: str) -> str:
    return hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()


def cache_paths(cache_dir: str | os.PathLike, obj: S3Object) -> tuple[Path, Path]:
    """(data file, JSON index entry) of ``obj`` in the cache."""
    base = Path(cache_dir) / "objects" / cache_key(obj.bucket, obj.key)
    return base, base.with_name(base.name + ".json")


def cached_file(cache_dir: str | os.PathLike, obj: S3Object) -> Path | None:
    """The cached file of ``obj`` when its recorded size and ETag match the listing, else None."""
    data, meta = cache_paths(cache_dir, obj)
    try:
        entry = json.loads(meta.read_text(encoding="utf-8"))
        if entry.get("size") == obj.size and entry.get("etag") == obj.etag and data.stat().st_size == obj.size:
            return data
    except (OSError, ValueError):
        pass
    return None


def _fetch(client, obj: S3Object, cache_dir: Path, progress: ProgressCallback, attempts: int = 3) -> Path:
    """Download ``obj`` into the cache (If-Match its listed ETag) and record it in the index.

    A transfer that breaks off (a PlatformError: dropped connection, timeout) is restarted, up to
    ``attempts`` times; errors that are the user's to fix (CustomerError) are raised at once."""
    data, meta = cache_paths(cache_dir, obj)
    data.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        tmp = data.with_name(f".{data.name}.{uuid.uuid4().hex}.part")
        written = 0
        try:
            with s3_errors(obj.uri, "download"):
                params = {"Bucket": obj.bucket, "Key": obj.key}
                if obj.etag:
                    params["IfMatch"] = f'"{obj.etag}"'
                body = client.get_object(**params)["Body"]
                with body, open(tmp, "wb") as out:
                    for chunk in body.iter_chunks(CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                        progress("bytes", obj, len(chunk))
            if written != obj.size:
                raise CustomerError(f"Cannot download {obj.uri}: got {written} bytes, the listing said "
                                    f"{obj.size}. The object changed after the job started; rerun.")
            os.chmod(tmp, 0o444)  # hard links share the inode: nobody may edit the cached bytes in place
            os.replace(tmp, data)
            atomic_write_bytes(meta, json.dumps({"uri": obj.uri, "size": obj.size, "etag": obj.etag,
                                            "downloaded": time.time()}).encode("utf-8"))
            break
        except PlatformError as exc:
            progress("bytes", obj, -written)
            if attempt == attempts:
                raise
            log.warning("S3: %s (attempt %d of %d); retrying", exc, attempt, attempts)
        finally:
            if tmp.exists():
                tmp.unlink()
    progress("done", obj, obj.size)
    return data


def fetch_to_cache(objects: Sequence[S3Object], cache_dir: str | os.PathLike | None = None, *,
                   max_workers: int = 8, progress: ProgressCallback | None = None, client=None) -> list[Path]:
    """Make sure every object is in the cache; return their cached files, in the order given.

    Objects already cached with the same size and ETag are not downloaded; the rest are downloaded in
    parallel. The first failure cancels the downloads not yet started and is raised (a CustomerError
    naming the object for S3 errors)."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    unique = list({obj.uri: obj for obj in objects}.values())
    reporter, owned = (progress, False) if progress is not None else (auto_progress(), True)
    started = time.monotonic()
    paths: dict[str, Path] = {}
    missing = []
    for obj in unique:
        hit = cached_file(cache_dir, obj)
        if hit is None:
            missing.append(obj)
        else:
            paths[obj.uri] = hit
    try:
        reporter("plan", None, sum(o.size for o in missing))
        for obj in unique:
            if obj.uri in paths:
                reporter("cached", obj, obj.size)
        if missing:
            client = client if client is not None else make_client(max_pool_connections=max(max_workers, 10))
            with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(missing))),
                                    thread_name_prefix="s3-download") as pool:
                futures = {pool.submit(_fetch, client, obj, cache_dir, reporter): obj for obj in missing}
                done, pending = wait(futures, return_when=FIRST_EXCEPTION)
                for future in pending:
                    future.cancel()
                for future in done:
                    if future.exception() is not None:
                        raise future.exception()
                for future, obj in futures.items():
                    paths[obj.uri] = future.result()
        reporter("finish", None, sum(o.size for o in missing))
    finally:
        if owned and hasattr(reporter, "close"):
            reporter.close()
    log.info("S3: %d object(s), %d reused from the cache, %d downloaded (%s) in %.1f s",
             len(unique), len(unique) - len(missing), len(missing),
             human_bytes(sum(o.size for o in missing)), time.monotonic() - started)
    return [paths[obj.uri] for obj in objects]


def place(source: Path, dest: Path) -> Path:
    """Put a cached file at ``dest``: a hard link when the file system allows it, else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    try:
        os.link(source, dest)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(source, dest)
    return dest


# ----------------------------------------------------------------------------------------- progress
class LogProgress:
    """Plain log lines: one per object downloaded, with running totals (for logs, CI, pipes)."""

    def __init__(self, logger: logging.Logger | None = None):
        self._log = logger or log
        self._lock = threading.Lock()
        self._total = self._done = 0

    def __call__(self, event: str, obj: S3Object | None, nbytes: int) -> None:
        with self._lock:
            if event == "plan":
                self._total = nbytes
            elif event == "cached":
                self._log.debug("S3: %s is up to date in the cache (%s)", obj.uri, human_bytes(nbytes))
            elif event == "done":
                self._done += nbytes
                self._log.info("S3: downloaded %s (%s) [%s / %s]", obj.uri, human_bytes(nbytes),
                               human_bytes(self._done), human_bytes(self._total))


class RichProgress:
    """A ``rich`` progress bar over the bytes to download (for terminals). Close it when done."""

    def __init__(self, console=None):
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self._progress = Progress(TextColumn("[bold]S3[/] {task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False)
        self._task = None
        self._cached = 0

    def __call__(self, event: str, obj: S3Object | None, nbytes: int) -> None:
        if event == "plan":
            self._progress.start()
            self._task = self._progress.add_task("downloading", total=nbytes)
        elif event == "cached":
            self._cached += 1
            self._progress.update(self._task, description=f"downloading ({self._cached} cached)")
        elif event == "bytes":
            self._progress.advance(self._task, nbytes)

    def close(self) -> None:
        self._progress.stop()


def auto_progress() -> ProgressCallback:
    """A rich bar when stdout is a terminal, log lines otherwise."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return RichProgress() if tty else LogProgress()
