"""``describe-tuning --plot``: each job's objective in launch order, with the best-so-far curve.

Drawn with matplotlib's object API on an Agg canvas (no display, no global backend switch).
"""
from __future__ import annotations

from pathlib import Path

from smlocal.errors import CustomerError
from smlocal.tuning.search import INSTALL_HINT


def best_so_far(values: list[float | None], minimize: bool) -> list[float | None]:
    """The best value among the jobs up to each one (None until one has a value)."""
    best, out = None, []
    for v in values:
        if v is not None and (best is None or (v < best if minimize else v > best)):
            best = v
        out.append(best)
    return out


def plot_trials(trials: list[dict], metric: str, minimize: bool, title: str, path: Path) -> Path:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise CustomerError(f"--plot needs matplotlib: {INSTALL_HINT}") from None
    numbers = [t["Number"] for t in trials]
    values = [t.get("Value") if t["TrainingJobStatus"] == "Completed" else None for t in trials]
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    done = [(n, v) for n, v in zip(numbers, values, strict=True) if v is not None]
    if done:
        ax.scatter(*zip(*done), color="tab:blue", zorder=3, label="completed job")
    stopped = [(t["Number"], t["Value"]) for t in trials if t.get("EarlyStopped") and t.get("Value") is not None]
    if stopped:
        ax.scatter(*zip(*stopped), color="tab:orange", marker="s", zorder=3, label="stopped early (last value)")
    best = best_so_far(values, minimize)
    shown = [(n, b) for n, b in zip(numbers, best, strict=True) if b is not None]
    if shown:
        ax.step(*zip(*shown), where="post", color="tab:green", linewidth=2, label="best so far")
    failed = [t["Number"] for t in trials if t["TrainingJobStatus"] == "Failed"]
    for n in failed:
        ax.axvline(n, color="tab:red", alpha=0.3, linestyle=":")
    if failed:
        ax.plot([], [], color="tab:red", alpha=0.5, linestyle=":", label="failed job")
    ax.set_xlabel("training job (launch order)")
    ax.set_ylabel(f"{metric} ({'lower' if minimize else 'higher'} is better)")
    ax.set_title(title)
    ax.set_xticks(numbers if len(numbers) <= 30 else numbers[::max(1, len(numbers) // 15)])
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
