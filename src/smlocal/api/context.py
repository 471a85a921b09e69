"""What every API handler shares: the store, the region, the S3 client and cache jobs use, the backend
choice and the local limits."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from smlocal.api.store import Store

MAX_TRAINING_INSTANCES = 8  # per instance type, at once: the local stand-in for the account's quota


@dataclass
class Context:
    store: Store
    region: str
    s3: object  # the runtime's s3.LazyClient, pointed at this server (or --s3-endpoint-url)
    backend: str | None = None  # "process" | "docker" | None (docker for foreign images when an engine answers)
    max_training_instances: int = MAX_TRAINING_INSTANCES  # instances of running training jobs, per type
    image: str | None = None  # smlocal's own image: runs the AWS built-ins and framework images on docker
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def cache_dir(self) -> Path:
        """The S3 download cache of this server's jobs and endpoints, under its state dir."""
        return self.store.root / "s3-cache"

    def spawn(self, target, *args, name: str) -> threading.Thread:
        """Run ``target`` on a daemon thread: jobs and endpoint starts are asynchronous, as the service's."""
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def choose_backend(self, image: str | None, algorithm: str | None, *, serving: bool = False):
        """``image`` None: smlocal's own container (a built-in, a framework script, a model to serve)."""
        from smlocal.runtime.commands import choose_backend

        return choose_backend(self.backend, image or self.image, algorithm, serving=serving)
