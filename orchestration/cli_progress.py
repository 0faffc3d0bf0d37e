"""The CLI's progress bars: one per tier of the run, fed by assets.common.progress events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from assets.common.progress import ProgressEvent, listening


@contextmanager
def progress_bars(console: Console | None = None) -> Iterator[Progress]:
    """Show a bar per tier while the block runs jobs in this process."""
    bars = Progress(TextColumn("{task.description:<22}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console or Console(stderr=True))
    tasks: dict[str, TaskID] = {}

    def update(event: ProgressEvent) -> None:
        name = f"{event.tier}[{event.partition}]"
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=event.total, unit=event.unit)
        bars.update(tasks[name], completed=event.done, total=event.total)

    with bars, listening(update):
        yield bars
