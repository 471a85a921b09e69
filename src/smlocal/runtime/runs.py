"""What a running host or endpoint looks like to the job monitor, whichever backend started it."""
from __future__ import annotations

import signal
from typing import Callable

LineSink = Callable[[str, str], None]  # (host or endpoint name, line without newline)


class Run:
    """A backend's run: ``signal`` is its own; stopping is SIGTERM, then SIGKILL, as SageMaker does."""

    def signal(self, sig: int) -> None:
        raise NotImplementedError

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
