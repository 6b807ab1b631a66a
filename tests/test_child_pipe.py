"""common/child_pipe.ChildPipe on a real uvloop loop: the futures, arb and bot children's end of their pipe."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import threading

import uvloop

from common.child_pipe import ChildPipe
from common.messages import Message, Notice, Stop, decode, encode


def test_a_message_larger_than_the_pipe_buffer_arrives_whole_after_attach() -> None:
    """uvloop makes a watched fd non-blocking; a 1 MB message then failed half-way (BlockingIOError)."""
    parent, child = mp.Pipe()
    received: list[Message] = []
    got: list[Message] = []
    reader = threading.Thread(target=lambda: got.append(decode(parent.recv())))

    async def main() -> None:
        stop = asyncio.Event()
        pipe = ChildPipe(child, received.append, stop.set, logging.getLogger("test"))
        pipe.attach(asyncio.get_running_loop(), stop.set)
        reader.start()
        pipe.tell(Notice("x" * 1_000_000))  # a slow reader: the send must wait, not fail
        parent.send(encode(Stop()))
        await asyncio.wait_for(_until(lambda: bool(received)), 5)
        pipe.detach(asyncio.get_running_loop())

    uvloop.run(main())
    reader.join(5)
    assert len(got) == 1 and isinstance(got[0], Notice) and len(got[0].text) == 1_000_000
    assert [type(m) for m in received] == [Stop]


def test_a_bad_message_is_skipped_and_a_closed_pipe_stops_the_child() -> None:
    parent, child = mp.Pipe()
    received: list[Message] = []

    async def main() -> None:
        stop = asyncio.Event()
        pipe = ChildPipe(child, received.append, stop.set, logging.getLogger("test"))
        pipe.attach(asyncio.get_running_loop(), stop.set)
        parent.send({"type": "NoSuchMessage"})
        parent.send(encode(Notice("after the bad one")))
        parent.close()
        await asyncio.wait_for(stop.wait(), 5)

    uvloop.run(main())
    assert [m.text for m in received if isinstance(m, Notice)] == ["after the bad one"]


async def _until(cond: object) -> None:
    while not cond():  # type: ignore[operator]
        await asyncio.sleep(0.01)


def test_tell_says_whether_the_message_went_out() -> None:
    """The bot's watch list and its requests are tried again only when their send failed: tell must say so."""
    parent, child = mp.Pipe()
    pipe = ChildPipe(child, lambda m: None, lambda: None, logging.getLogger("test"))
    assert pipe.tell(Notice("up")) is True and isinstance(decode(parent.recv()), Notice)
    parent.close()
    assert pipe.tell(Notice("to nobody")) is False  # the supervisor is gone: no exception, a False
    assert ChildPipe(None, lambda m: None, lambda: None, logging.getLogger("test")).tell(Notice("no pipe")) is False
