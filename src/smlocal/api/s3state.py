"""Embedded S3 (moto) that outlives a restart: its buckets and objects mirrored under the state dir.

moto keeps S3 in memory and has no state file, so this module mirrors it: after requests that may
change S3, a background flush writes the objects that changed (by ETag) to ``<state>/s3/<bucket>/``
with an index of key -> file, ETag, metadata; deleted keys and buckets are removed. On start the
mirror is loaded back into moto's backend. Multipart uploads in progress are not kept.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from pathlib import Path

from smlocal.api.protocol import ACCOUNT
from smlocal.artifacts.files import atomic_write_bytes

log = logging.getLogger(__name__)
INDEX = "index.json"
FLUSH_EVERY_S = 0.5


def _backend():
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT]["aws"]


def reset_moto() -> None:
    """Start from empty moto backends (an earlier server in this process may have filled them)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _file_name(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


def _snapshot() -> dict[str, tuple[str, dict]]:
    """bucket -> (region, {key: FakeKey}) as moto holds them now (copied: requests go on meanwhile)."""
    for _ in range(5):
        try:
            return {name: (bucket.region_name, dict(bucket.keys.items()))
                    for name, bucket in list(_backend().buckets.items())}
        except RuntimeError:  # changed during the copy
            continue
    return {}


class S3Mirror:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def load(self) -> int:
        """Put the mirrored buckets and objects into moto; returns how many objects."""
        backend, count = _backend(), 0
        for folder in sorted(p for p in self.root.iterdir() if (p / INDEX).is_file()):
            index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
            backend.create_bucket(folder.name, index.get("region", "us-east-1"))
            for key, entry in index["keys"].items():
                obj = backend.put_object(folder.name, key, (folder / entry["file"]).read_bytes(),
                                         etag=entry.get("etag"))
                obj.set_metadata(entry.get("metadata") or {})
                count += 1
        return count

    def flush(self) -> None:
        with self._lock:
            self.dirty.clear()
            buckets = _snapshot()
            for folder in self.root.iterdir():
                if folder.is_dir() and folder.name not in buckets:
                    shutil.rmtree(folder, ignore_errors=True)
            for name, (region, keys) in buckets.items():
                self._flush_bucket(self.root / name, region, keys)

    def _flush_bucket(self, folder: Path, region: str, keys: dict) -> None:
        index_path = folder / INDEX
        old = json.loads(index_path.read_text(encoding="utf-8"))["keys"] if index_path.is_file() else {}
        new = {}
        for key, obj in keys.items():
            entry = {"file": _file_name(key), "etag": obj.etag, "metadata": dict(obj.metadata)}
            if old.get(key, {}).get("etag") != obj.etag or not (folder / entry["file"]).is_file():
                try:
                    atomic_write_bytes(folder / entry["file"], obj.value)
                except ValueError:  # deleted meanwhile (moto closes its buffer)
                    continue
            new[key] = entry
        for key, entry in old.items():
            if key not in new:
                (folder / entry["file"]).unlink(missing_ok=True)
        if new != old or not index_path.is_file():
            atomic_write_bytes(index_path, json.dumps({"region": region, "keys": new}).encode())

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.dirty.wait(FLUSH_EVERY_S) and not self._stop.is_set():
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - keep mirroring; the next change retries
                    log.exception("could not mirror S3 to %s", self.root)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="s3-mirror", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()
