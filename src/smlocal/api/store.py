"""The API's state on disk: one JSON record per resource, ``<state>/<kind>/<name>.json``.

Every write is atomic (temp file + rename), and every read-modify-write holds the store's lock, so
two clients at once or a crash mid-write never leave a half record. The records are the Describe
answers themselves (timestamps as epoch seconds), so a restarted server answers from them at once.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable, Iterator

from smlocal.artifacts.files import atomic_write_bytes

KINDS = ("training-jobs", "models", "endpoint-configs", "endpoints", "transform-jobs")


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.lock = threading.RLock()
        for kind in KINDS:
            (self.root / kind).mkdir(parents=True, exist_ok=True)

    def _path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.json"

    def get(self, kind: str, name: str) -> dict | None:
        path = self._path(kind, name)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def require(self, kind: str, name: str, missing: Callable[[], Exception]) -> dict:
        """The record, or ``missing()`` raised (each kind words its not-found error as the service does)."""
        record = self.get(kind, name)
        if record is None:
            raise missing()
        return record

    def put(self, kind: str, name: str, record: dict) -> dict:
        with self.lock:
            atomic_write_bytes(self._path(kind, name), json.dumps(record, indent=1).encode())
        return record

    def create(self, kind: str, name: str, record: dict, exists: Callable[[], Exception]) -> dict:
        """Write a new record; ``exists()`` is raised when the name is taken."""
        with self.lock:
            if self._path(kind, name).exists():
                raise exists()
            return self.put(kind, name, record)

    def update(self, kind: str, name: str, change: Callable[[dict], None]) -> dict | None:
        """Apply ``change`` to the stored record under the lock; None when there is no such record."""
        with self.lock:
            record = self.get(kind, name)
            if record is None:
                return None
            change(record)
            return self.put(kind, name, record)

    def delete(self, kind: str, name: str) -> bool:
        with self.lock:
            try:
                self._path(kind, name).unlink()
                return True
            except FileNotFoundError:
                return False

    def update_each(self, kind: str, status_key: str, statuses: tuple[str, ...],
                    change: Callable[[dict], None]) -> list[dict]:
        """``change`` every record whose ``status_key`` is one of ``statuses``; the changed records
        (a restart's clean-up of what was running)."""
        def guarded(record: dict) -> None:
            if record.get(status_key) in statuses:
                change(record)
                changed.append(record)

        changed: list[dict] = []
        for path in sorted((self.root / kind).glob("*.json")):
            self.update(kind, path.stem, guarded)
        return changed

    def all(self, kind: str) -> Iterator[dict]:
        for path in sorted((self.root / kind).glob("*.json")):
            try:
                yield json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # removed meanwhile
                continue

    def work_dir(self, kind: str) -> Path:
        """Where a kind's runtime files live (job directories, endpoint models)."""
        path = self.root / "work" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path
