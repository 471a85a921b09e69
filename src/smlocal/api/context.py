"""What every API handler shares: the store, the region, the S3 client jobs use, the backend choice."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from smlocal.api.store import Store


@dataclass
class Context:
    store: Store
    region: str
    s3: object  # the runtime's s3.LazyClient, pointed at this server (or --s3-endpoint-url)
    backend: str | None = None  # "process" | "docker" | None (docker for foreign images when an engine answers)
    threads: list[threading.Thread] = field(default_factory=list)

    def spawn(self, target, *args, name: str) -> threading.Thread:
        """Run ``target`` on a daemon thread: jobs and endpoint starts are asynchronous, as the service's."""
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def choose_backend(self, image: str | None, algorithm: str | None):
        from smlocal.runtime.commands import choose_backend

        return choose_backend(self.backend, image, algorithm)

    def download(self, uri: str, target: Path) -> Path:
        """An s3:// object to a local file, through the jobs' S3 client (its errors name the key)."""
        from smlocal.runtime.s3.errors import s3_errors
        from smlocal.runtime.s3.uri import parse_s3_uri

        bucket, key = parse_s3_uri(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        with s3_errors(uri, "read"):
            self.s3.get().download_file(bucket, key, str(target))
        return target
