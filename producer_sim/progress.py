"""The simulator's terminal output: a live progress line and the final summary table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from producer_sim.simulator import ProgressSnapshot, SimulationSummary, Simulator


def render_progress(snapshot: ProgressSnapshot) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    fraction = snapshot.fraction_done
    # An unbounded run (--loop without limit or duration) shows a pulsing bar.
    bar = ProgressBar(total=1.0 if fraction is not None else None, completed=fraction or 0.0)
    target = f"{snapshot.target_rate_per_s:g}/s" if snapshot.target_rate_per_s > 0 else "max"
    grid.add_row(
        bar,
        f"sent [bold]{snapshot.sent:,}[/]",
        f"acked [green]{snapshot.acknowledged:,}[/]",
        f"failed [{'red' if snapshot.failed else 'dim'}]{snapshot.failed:,}[/]",
        f"{snapshot.rate_per_s:,.1f} msg/s (target {target})",
        f"{snapshot.elapsed_s:,.1f}s",
    )
    return grid


@contextmanager
def live_progress(simulator: Simulator, console: Console, enabled: bool) -> Iterator[None]:
    """Redraw the progress line four times a second while the block runs (when enabled)."""
    if not enabled:
        yield
        return
    with Live(
        get_renderable=lambda: render_progress(simulator.snapshot()),
        console=console,
        refresh_per_second=4,
    ):
        yield


def summary_table(summary: SimulationSummary) -> Table:
    table = Table(title=f"simulator: {summary.topic}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows: list[tuple[str, str]] = [
        ("stopped by", summary.stop_reason),
        ("sent", f"{summary.sent:,}"),
        ("acknowledged", f"{summary.acknowledged:,}"),
        ("failed", f"{summary.failed:,}"),
        ("posts", f"{summary.posts:,}"),
        ("duplicates", f"{summary.duplicates:,}"),
        ("poison", f"{sum(summary.poison.values()):,}"),
        *((f"  {kind}", f"{count:,}") for kind, count in sorted(summary.poison.items())),
        ("gold labels", ", ".join(f"{k} {v:,}" for k, v in sorted(summary.gold_labels.items()))),
        ("elapsed", f"{summary.elapsed_s:,.2f} s"),
        ("achieved rate", f"{summary.achieved_rate_per_s:,.1f} msg/s"),
    ]
    if summary.spike_posts:
        share = summary.spike_negative / summary.spike_posts
        rows.append(("spike", f"{summary.spike_posts:,} posts, {share:.0%} negative"))
    rows.extend(("delivery error", error) for error in summary.delivery_errors)
    for name, value in rows:
        table.add_row(name, value)
    return table
