"""Progress of the long-running tools, on stderr only.

perf.eval_pumps, perf.bench_load, perf.soak and supervisor.train run for minutes to hours; without
a sign of life a user cannot tell a slow run from a hung one (issue #24). Their stdout and JSON are
records that scripts and tests parse, so progress never goes there.

On a terminal it is a tqdm bar (tqdm is a tool dependency, requirements-dev.txt). Anywhere else
(CI logs, a pipe, a file), or when tqdm is not installed, it is a plain line at the start, at most
every `every_s` seconds after, and at the end: a log must not fill with redrawn bars.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

PLAIN_EVERY_S = 30.0


def _tqdm_class() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # a service venv without the tool dependencies: plain lines still work
        return None
    return tqdm


class Progress:
    """A counter toward `total` (items, or seconds of a timed run) shown on `stream` (stderr).

    update() adds to it, advance_to() sets it (for loops that measure elapsed time), note() sets
    a short status shown beside it (the phase of a run, say). enabled=False shows nothing: a
    function that reports progress can then take an optional bar without testing it at each step.
    """

    def __init__(self, total: float | None, desc: str, unit: str = "it", *, stream: TextIO | None = None,
                 every_s: float = PLAIN_EVERY_S, leave: bool = True, enabled: bool = True) -> None:  # fmt: skip
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.n = 0.0
        self.status = ""
        self.started = self.last_line = time.monotonic()
        self.enabled, self.closed = enabled, False
        tqdm = _tqdm_class() if enabled and _isatty(self.stream) else None
        self.bar: Any = None
        if tqdm is not None:
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=leave, mininterval=0.5,
                            dynamic_ncols=True, bar_format=None if unit != "s" else _SECONDS_FORMAT)  # fmt: skip
        elif enabled:
            self._line()

    def update(self, n: float = 1.0) -> None:
        """Count n more items (or seconds)."""
        self.advance_to(self.n + n)

    def advance_to(self, done: float) -> None:
        """Set the count (clipped to the total): timed loops pass their elapsed seconds."""
        done = min(done, self.total) if self.total is not None else done
        if done <= self.n:
            return
        step, self.n = done - self.n, done
        if self.bar is not None:
            self.bar.update(int(step) if step.is_integer() else step)  # counts show as 3/5, not 3.0/5
        elif self.enabled and time.monotonic() - self.last_line >= self.every_s:
            self._line()

    def note(self, status: str) -> None:
        """A short status shown beside the count from now on (a plain line carries it next time)."""
        self.status = status
        if self.bar is not None:
            self.bar.set_postfix_str(status, refresh=False)

    def write(self, text: str, file: TextIO | None = None) -> None:
        """Print a line of output (to stdout by default) without tearing a bar that is being drawn.

        Without a bar this is print(text, file=file, flush=True): the output is byte for byte
        what the tool printed before it had progress.
        """
        out = file if file is not None else sys.stdout
        if self.bar is not None:
            self.bar.write(text, file=out)
            out.flush()
        else:
            print(text, file=out, flush=True)

    def close(self) -> None:
        """The final count; idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self._line(done=True)

    def _line(self, done: bool = False) -> None:
        self.last_line = time.monotonic()
        count = f"{_num(self.n)}/{_num(self.total)}" if self.total is not None else _num(self.n)
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        status = f", {self.status}" if self.status else ""
        end = ", done" if done else ""
        print(f"{self.desc}: {count} {self.unit}{pct}, {self.last_line - self.started:.0f} s elapsed{status}{end}",
              file=self.stream, flush=True)  # fmt: skip

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def progress(iterable: Iterable[T], total: int | None, desc: str, unit: str = "it", *,
             stream: TextIO | None = None, every_s: float = PLAIN_EVERY_S) -> Iterator[T]:  # fmt: skip
    """Iterate `iterable`, counting one item per step on a Progress; closed when the loop ends."""
    with Progress(total, desc, unit, stream=stream, every_s=every_s) as bar:
        for item in iterable:
            yield item
            bar.update()


# Seconds as whole numbers: tqdm's default shows float counts like 37.002/60.0.
_SECONDS_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or detached stream
        return False


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"
