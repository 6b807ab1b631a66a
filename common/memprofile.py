"""Opt-in memory profile of a running process: smaps, glibc malloc statistics, tracemalloc top lines.

Why: a 24x7 service on a small VPS must not grow, and PSS alone cannot tell allocator warm-up from
a Python-level leak or a C-level one. With SCANNER_MEMPROFILE_DIR set (perf/soak_long.py sets it),
every process appends one JSON line every SCANNER_MEMPROFILE_EVERY_S seconds to DIR/<name>.jsonl:
/proc/self/smaps_rollup (Pss, Anonymous, ...), mallinfo2 (heap in use, free but kept by malloc),
gc counts, the anonymous memory split by region (common/memprofile.anon_regions), and, in the processes named in SCANNER_MEMPROFILE_TRACE (e.g. "supervisor,shard0"),
tracemalloc's traced total and the top source lines by growth since the first sample.

Off (no thread, no tracing, no cost) unless the environment asks for it; never in production.
A daemon thread, so neither uvloop's loop nor a shard's hot path is touched; the snapshot holds
the GIL for a moment every interval, which is why the interval is minutes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from common.memtrim import release_free_memory

ENV_DIR = "SCANNER_MEMPROFILE_DIR"
ENV_EVERY = "SCANNER_MEMPROFILE_EVERY_S"
ENV_TRACE = "SCANNER_MEMPROFILE_TRACE"
TOP = 25
_started_pid: int | None = None


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]  # fmt: skip


def mallinfo() -> dict[str, int]:
    """glibc's heap figures in bytes: arena (sbrk heap), hblkhd (mmapped blocks), uordblks (in use), fordblks (free, kept)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _MallInfo2
    info = fn()
    return {name: int(getattr(info, name)) for name in ("arena", "hblkhd", "uordblks", "fordblks", "keepcost")}


def smaps_rollup(pid: int | str = "self") -> dict[str, int]:
    """/proc/PID/smaps_rollup in kB (Rss, Pss, Pss_Anon, Anonymous, Private_Dirty, ...); {} where absent."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            out[parts[0][:-1]] = int(parts[1])
    return out


ARENA_ALIGN = 64 * 2**20  # glibc's per-thread heaps are HEAP_MAX_SIZE-aligned mappings on 64-bit
THREAD_STACK_KB = 8192  # the default pthread stack (ulimit -s), one mapping per thread


def _region(start: int, size_kb: int, name: str) -> str | None:
    """Which allocator owns an anonymous mapping: the rules glibc and pthreads follow when they map."""
    if name == "[heap]":
        return "malloc_main_heap"
    if name == "[stack]":
        return "main_stack"
    if name.startswith("["):
        return None  # [vdso], [vvar]: not the process's memory
    if name:
        return "file_private"  # copy-on-write pages of mapped libraries (relocations, globals)
    if start % ARENA_ALIGN == 0 and size_kb <= ARENA_ALIGN // 1024:
        return "malloc_thread_arenas"
    if size_kb == THREAD_STACK_KB:
        return "thread_stacks"
    return "other_anon"  # Python's own 1 MiB arenas (pymalloc), malloc's mmapped blocks, numpy/BLAS buffers


def anon_regions(pid: int | str = "self") -> dict[str, int]:
    """Anonymous kB by owner (main malloc heap, thread arenas, stacks, pymalloc and mmapped blocks, libraries' COW pages).

    Why: smaps_rollup's one Anonymous figure cannot say whether growth is malloc's (mallinfo2
    tells used from free there) or Python's arenas, which malloc never sees.
    """
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return out
    region: str | None = None
    for line in text.splitlines():
        head = line.split(None, 5)
        if "-" in head[0] and not head[0].endswith(":"):
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            region = _region(lo, (hi - lo) // 1024, head[5].strip() if len(head) > 5 else "")
        elif region and head[0] == "Anonymous:":
            out[region] = out.get(region, 0) + int(head[1])
    return out


class MemProfile:
    """Samples one process; sample() is also called directly by tests."""

    def __init__(self, name: str, out_dir: Path, trace: bool) -> None:
        self.name, self.path, self.trace = name, out_dir / f"{name}.jsonl", trace
        self.baseline: tracemalloc.Snapshot | None = None
        out_dir.mkdir(parents=True, exist_ok=True)

    def sample(self) -> dict[str, Any]:
        """One JSON line: memory now and, when tracing, where Python's allocations grew."""
        row: dict[str, Any] = {"t": round(time.time(), 1), "proc": self.name, "pid": os.getpid(), "smaps_kb": smaps_rollup(),
                               "malloc": mallinfo(), "anon_kb": anon_regions(),
                               "pymalloc_blocks": sys.getallocatedblocks(), "gc_objects": len(gc.get_objects()), "gc_counts": gc.get_count()}  # fmt: skip
        if self.trace and tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            row["traced"] = {"current": current, "peak": peak, "overhead": tracemalloc.get_tracemalloc_memory()}
            snap = tracemalloc.take_snapshot().filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),))
            if self.baseline is None:
                self.baseline = snap
            row["top_growth"] = [{"where": str(s.traceback[0]), "size_diff": s.size_diff, "count_diff": s.count_diff, "size": s.size}
                                 for s in snap.compare_to(self.baseline, "lineno")[:TOP]]  # fmt: skip
            row["top_size"] = [{"where": str(s.traceback[0]), "size": s.size, "count": s.count} for s in snap.statistics("lineno")[:TOP]]
            del snap
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        return row


def start(name: str) -> MemProfile | None:
    """Start the sampler thread in this process when SCANNER_MEMPROFILE_DIR is set (once per process).

    A forked child inherits the parent's tracing state but not its thread: it starts its own, and
    stops tracing unless it is itself named in SCANNER_MEMPROFILE_TRACE.
    """
    global _started_pid
    out = os.environ.get(ENV_DIR)
    if not out or _started_pid == os.getpid():
        return None
    _started_pid = os.getpid()
    trace = name in {p.strip() for p in os.environ.get(ENV_TRACE, "").split(",")}
    if trace and not tracemalloc.is_tracing():
        tracemalloc.start(1)
    elif not trace and tracemalloc.is_tracing():
        tracemalloc.stop()
    every = float(os.environ.get(ENV_EVERY, "600"))
    profile = MemProfile(name, Path(out), trace)

    def loop() -> None:
        while True:
            try:
                profile.sample()
                release_free_memory(0.0)  # the snapshot's own burst must not read as the service's growth
            except Exception as exc:  # noqa: BLE001 - a profiler must never take the process down
                with profile.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"t": time.time(), "proc": name, "error": repr(exc)}) + "\n")
            time.sleep(every)

    threading.Thread(target=loop, name="memprofile", daemon=True).start()
    return profile
