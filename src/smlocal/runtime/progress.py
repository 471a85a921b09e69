"""Progress display: a rich live display on a terminal, plain log lines otherwise (CI, pipes, files).

Log lines (container output, runtime messages) always go through ``Display.line`` so that on a
terminal they scroll above the progress bars instead of tearing them.
"""
from __future__ import annotations

import re
import sys
import threading
import time
from typing import TextIO

# "#progress_metric: host=algo-1, completed 40.0 % of epochs": the line the built-in algorithms log as
# epochs complete (algorithms/common/reporting.py writes it the same way)
_PROGRESS = re.compile(r"#progress_metric: host=(?P<host>[^,]+), completed (?P<pct>[0-9.]+) %")


def parse_progress(line: str) -> tuple[str, float] | None:
    match = _PROGRESS.search(line)
    if not match:
        return None
    return match.group("host").strip(), float(match.group("pct"))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class Task:
    """One progress item. ``total=None`` for open-ended counts (bytes fed to a pipe)."""

    def __init__(self, display: "Display", key, description: str, total: float | None, unit: str):
        self.display, self.key, self.description, self.total, self.unit = display, key, description, total, unit
        self.completed = 0.0
        self._last_plain: float | None = None
        self._shown = 0.0  # what the last plain line said
        self._lock = threading.Lock()

    def advance(self, amount: float = 1) -> None:
        with self._lock:  # feeders of several hosts advance the same task
            self.completed += amount
        self.display._update(self)

    def update(self, completed: float) -> None:
        self.completed = completed
        self.display._update(self)


class Display:
    def __init__(self, live: bool | None = None, stream: TextIO | None = None, plain_every_s: float = 10.0):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.plain_every_s = plain_every_s
        self._lock = threading.Lock()
        self._progress = None
        self._tasks: list[Task] = []
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._console = Console(file=self.stream)
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(), console=self._console, transient=True,
            )
            self._progress.start()

    # -- lines
    def line(self, text: str, prefix: str | None = None) -> None:
        text = f"{prefix} | {text}" if prefix else text
        with self._lock:
            if self._progress is not None:
                self._console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                self.stream.write(text + "\n")
                self.stream.flush()

    def message(self, text: str) -> None:
        self.line(f"smlocal: {text}")

    # -- progress
    def task(self, description: str, total: float | None = None, unit: str = "") -> Task:
        task = Task(self, None, description, total, unit)
        if self._progress is not None:
            task.key = self._progress.add_task(description, total=total, detail="")
        self._tasks.append(task)
        return task

    def _detail(self, task: Task) -> str:
        if task.unit == "bytes":
            return human_bytes(task.completed)
        if task.total:
            return f"{task.completed:.0f}/{task.total:.0f} {task.unit}".strip()
        return f"{task.completed:.0f} {task.unit}".strip()

    def _update(self, task: Task) -> None:
        if self._progress is not None:
            self._progress.update(task.key, completed=task.completed, detail=self._detail(task))
            return
        now = time.monotonic()
        done = task.total is not None and task.completed >= task.total
        if done or task._last_plain is None or now - task._last_plain >= self.plain_every_s:
            self._plain(task, now)

    def _plain(self, task: Task, now: float) -> None:
        task._last_plain, task._shown = now, task.completed
        self.line(f"smlocal: {task.description}: {self._detail(task)}")

    def close(self) -> None:
        """Stop the live display; off a terminal, give each count whose last line is behind its total."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            return
        for task in self._tasks:
            if task._last_plain is not None and task.completed != task._shown:
                self._plain(task, time.monotonic())

    def __enter__(self) -> "Display":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
