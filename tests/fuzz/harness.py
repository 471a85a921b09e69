"""The fuzz harness: the property every decoder meets, its CPU-time deadline, and the Hypothesis settings.

The property: an input gives a correct result or a typed error (a ``SmlocalError``, a 4xx for request
codecs); any other exception, or an example that runs past its deadline, is a finding.
"""
from __future__ import annotations

import contextlib
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from smlocal.errors import SmlocalError

DEADLINE_S = 10.0  # CPU seconds one example may take; examples take milliseconds


class Hang(Exception):
    """An example ran past its CPU-time deadline: a decoder loops."""


# CI size: derandomized (a CI run is reproducible) and without an example database (nothing written in
# the repository). Sized so that the whole of tests/fuzz takes well under a minute on one core.
# Hypothesis' own wall-clock deadline is off: a loaded CI machine would make it flaky; hangs are caught
# by the CPU-time deadline below.
CI = settings(max_examples=600, derandomize=True, database=None, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def keep_storage_outside_repo() -> None:
    """Hypothesis' caches (and any example database) go under the system temp directory, not ./.hypothesis."""
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "smlocal-hypothesis")


@contextlib.contextmanager
def cpu_deadline(seconds: float = DEADLINE_S) -> Iterator[None]:
    """Raise ``Hang`` in the code under test once it has used ``seconds`` of CPU time.

    CPU time (``ITIMER_VIRTUAL``), not wall time, so a busy machine does not fail it, and not
    ``SIGALRM``, which pytest-timeout uses."""
    def expire(signum, frame):
        raise Hang(f"the example used more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGVTALRM, expire)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def outcome(decode: Callable[[], Any], client_error: bool = False) -> Any:
    """``decode()``'s result, or the ``SmlocalError`` it raised (returned, not raised); anything else
    raises. ``client_error``: the error must also be a 4xx (request codecs answer bad bytes so)."""
    with cpu_deadline():
        try:
            return decode()
        except SmlocalError as exc:
            if client_error and not 400 <= exc.http_status < 500:
                raise
            return exc


def is_error(value: Any) -> bool:
    return isinstance(value, BaseException)


@dataclass(frozen=True)
class Target:
    """One decoder under fuzz: ``check(case)`` asserts the property for one drawn case."""

    name: str
    cases: st.SearchStrategy
    check: Callable[[Any], None]
