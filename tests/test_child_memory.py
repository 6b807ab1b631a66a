"""A child never carries the supervisor's heap (issue #23's memory slope).

Why this matters to a trader: the 2,000-pair soak's PSS grew 24-54 MB/h with heap in use flat in
every process. Children forked from the supervisor inherited its whole heap copy-on-write and
slowly turned it into private copies; a shard restarted an hour in started 15 MB bigger. Children
now come from a forkserver (supervisor/forkserver.py). Here the parent grows a big heap first,
as the supervisor does over hours, then starts a child through the real ChildProcess: the child's
own memory must not contain that heap, shared or private. Under the old fork start this child's
Rss held all of it (and its PSS half of it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from common.messages import Stop
from supervisor.children import ChildProcess

GROWN_MB = 160


def _report_memory(conn: object, out: str) -> None:
    """Write this process's Rss and Pss (kB, from /proc) and wait to be told to stop."""
    rollup = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        rollup[key] = int(value.split()[0])
    Path(out).write_text(f"{rollup['Rss']} {rollup['Pss']}")
    conn.recv()  # type: ignore[attr-defined]


async def test_a_child_started_after_the_supervisor_grew_does_not_carry_its_heap(tmp_path: Path) -> None:
    grown = [bytearray(b"x" * (1 << 20)) for _ in range(GROWN_MB)]  # the "supervisor" after hours: 160 MB, every page touched
    out = tmp_path / "memory"
    child = ChildProcess("shard0", _report_memory, lambda: (str(out),))
    child.start()
    try:
        for _ in range(300):
            if out.exists() and out.read_text():
                break
            await asyncio.sleep(0.05)
        rss_kb, pss_kb = map(int, out.read_text().split())
    finally:
        await child.stop(Stop())
    assert len(grown) == GROWN_MB
    # A fresh child with the preloaded modules is well under 100 MB resident; one forked from this
    # process would map all 160 MB of the grown heap.
    assert rss_kb < 100 * 1024, f"the child maps {rss_kb / 1024:.0f} MB: it inherited the parent's heap"
    assert pss_kb < 80 * 1024, f"the child's PSS is {pss_kb / 1024:.0f} MB"
