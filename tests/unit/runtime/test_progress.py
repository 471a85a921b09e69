"""Progress display: plain lines off a terminal, rich display on one; progress lines parsed."""
from __future__ import annotations

import io

from smlocal.runtime.progress import Display, human_bytes, parse_progress


def test_parse_progress_line():
    line = "[11/21/2026 00:47:39 INFO 1408] #progress_metric: host=algo-2, completed 40.0 % of epochs"
    assert parse_progress(line) == ("algo-2", 40.0)
    assert parse_progress("#quality_metric: host=algo-1, train msd <loss>=2.5") is None


def test_plain_display_writes_lines_and_throttled_progress():
    out = io.StringIO()
    display = Display(live=False, stream=out, plain_every_s=3600)
    display.line("hello", prefix="algo-1")
    task = display.task("transform", total=3, unit="files")
    task.advance()  # first update is shown, then throttled...
    task.advance()
    task.advance()  # ...until done
    fed = display.task("pipe data fed", unit="bytes")
    fed.advance(3 * 1024 * 1024)
    display.close()
    assert out.getvalue().splitlines() == [
        "algo-1 | hello", "smlocal: transform: 1/3 files", "smlocal: transform: 3/3 files",
        "smlocal: pipe data fed: 3.0 MB",
    ]
    assert human_bytes(512) == "512 B"


def test_plain_display_ends_with_each_open_count_total():
    """Throttled counts (bytes fed to the pipes) end with their total, not the first chunk."""
    out = io.StringIO()
    display = Display(live=False, stream=out, plain_every_s=3600)
    fed = display.task("pipe data fed", unit="bytes")
    for _ in range(5):
        fed.advance(1024 * 1024)
    quiet = display.task("other", unit="bytes")
    quiet.advance(10)
    display.close()
    assert out.getvalue().splitlines() == ["smlocal: pipe data fed: 1.0 MB", "smlocal: other: 10 B",
                                           "smlocal: pipe data fed: 5.0 MB"]


def test_live_display_keeps_log_lines():
    out = io.StringIO()
    with Display(live=True, stream=out) as display:
        task = display.task("algo-1 epochs", total=100, unit="%")
        display.line("a log line", prefix="algo-1")
        task.update(50)
    assert "algo-1 | a log line" in out.getvalue()
