"""Progress of a bootstrap for people (a `rich` bar with the time left) and scripts (JSON lines).

    with progress_for(json_lines=args.json, clock=time.monotonic) as progress:
        await bootstrap(..., progress=progress)

Two phases: `download` (bytes of the snapshot) and `stage` (bytes of the
snapshot read, records staged).  JSON mode prints one object per line, at most
every `every_s` seconds plus the last of each phase:

    {"phase": "stage", "done_bytes": 1048576, "total_bytes": 9437184,
     "records": 12000, "total_records": 101234, "eta_s": 4.1}
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)


class BootstrapProgress(Protocol):
    def download(self, done_bytes: int, total_bytes: int | None) -> None: ...

    def stage(self, done_bytes: int, total_bytes: int, records: int,
              total_records: int) -> None: ...


class NoProgress:
    def download(self, done_bytes: int, total_bytes: int | None) -> None:
        return None

    def stage(self, done_bytes: int, total_bytes: int, records: int,
              total_records: int) -> None:
        return None


class JsonProgress:
    """JSON lines with an ETA from the rate since the phase began."""

    def __init__(self, out: TextIO, clock: Callable[[], float], every_s: float = 0.5) -> None:
        self._out = out
        self._clock = clock
        self._every_s = every_s
        self._phase = ""
        self._start = 0.0
        self._last = -1e18

    def _emit(self, phase: str, done: int, total: int | None, **extra: int) -> None:
        now = self._clock()
        if phase != self._phase:
            self._phase, self._start, self._last = phase, now, -1e18
        final = total is not None and done >= total
        if not final and now - self._last < self._every_s:
            return
        self._last = now
        elapsed = now - self._start
        eta = None
        if total and done and elapsed > 0:
            eta = round(elapsed * (total - done) / done, 1)
        line = {"phase": phase, "done_bytes": done, "total_bytes": total, **extra,
                "eta_s": eta}
        self._out.write(json.dumps(line) + "\n")
        self._out.flush()

    def download(self, done_bytes: int, total_bytes: int | None) -> None:
        self._emit("download", done_bytes, total_bytes)

    def stage(self, done_bytes: int, total_bytes: int, records: int,
              total_records: int) -> None:
        self._emit("stage", done_bytes, total_bytes, records=records,
                   total_records=total_records)


class RichProgress:
    """Two bars: the download (bytes) and the staging (bytes read, records), each with ETA."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def _task(self, name: str, total: int | None) -> TaskID:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(name, total=total, records="")
        return self._tasks[name]

    def download(self, done_bytes: int, total_bytes: int | None) -> None:
        self._progress.update(self._task("download", total_bytes), completed=done_bytes,
                              total=total_bytes)

    def stage(self, done_bytes: int, total_bytes: int, records: int,
              total_records: int) -> None:
        self._progress.update(self._task("restore", total_bytes), completed=done_bytes,
                              total=total_bytes,
                              records=f"{records:,}/{total_records:,} records")


@contextmanager
def progress_for(*, json_lines: bool, clock: Callable[[], float],
                 out: TextIO | None = None) -> Iterator[BootstrapProgress]:
    """The reporter for a command: JSON lines on stdout, or a bar on stderr."""
    if json_lines:
        yield JsonProgress(out or sys.stdout, clock)
        return
    bar = Progress(TextColumn("{task.description:9}"), BarColumn(), DownloadColumn(),
                   TextColumn("{task.fields[records]}"), TimeRemainingColumn(),
                   console=Console(file=out or sys.stderr), transient=False)
    with bar:
        yield RichProgress(bar)


__all__ = ["BootstrapProgress", "JsonProgress", "NoProgress", "RichProgress", "progress_for"]
