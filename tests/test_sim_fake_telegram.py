"""The fake Bot API answers like Telegram does, so bot tests through it mean something."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sim.fake_telegram import FakeTelegram, markdown_v2_error, run_fake_telegram

ROOT = Path(__file__).resolve().parents[1]


async def _call(session: aiohttp.ClientSession, fake: FakeTelegram, method: str, token: str | None = None, **params: Any) -> tuple[int, dict[str, Any]]:
    async with session.post(f"{fake.base_url}{token or fake.token}/{method}", json=params) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    ("text", "ok"),
    [("plain words", True), ("1\\.5 \\- 2", True), ("*bold* `0.1-2` _it_", True), ("a.b", False), ("x-1", False),
     ("(1)", False), ("*open", False), ("`code", False), ("ends\\", False), ("\\#1 \\!", True)],
)  # fmt: skip
def test_markdown_v2_validator_refuses_unescaped_reserved_characters(text: str, ok: bool) -> None:
    err = markdown_v2_error(text)
    assert (err is None) == ok, err
    if not ok:
        assert err is not None and err.startswith("can't parse entities")


async def test_api_answers_like_telegram() -> None:
    async with run_fake_telegram() as fake, aiohttp.ClientSession() as s:
        status, body = await _call(s, fake, "getMe")
        assert status == 200 and body["result"]["is_bot"] is True
        status, body = await _call(s, fake, "getMe", token="1:wrong")
        assert status == 401 and body["ok"] is False

        status, body = await _call(s, fake, "sendMessage", chat_id=5, text="price 1.5", parse_mode="MarkdownV2")
        assert status == 400 and body["error_code"] == 400 and "can't parse entities" in body["description"]
        status, body = await _call(s, fake, "sendMessage", chat_id=5, text="price 1.5")  # no parse mode: anything goes
        assert status == 200
        markup = {"inline_keyboard": [[{"text": "x", "callback_data": "b" * 65}]]}
        status, body = await _call(s, fake, "sendMessage", chat_id=5, text="hi", reply_markup=markup)
        assert status == 400 and "BUTTON_DATA_INVALID" in body["description"]

        markup = {"inline_keyboard": [[{"text": "x", "callback_data": "b" * 64}]]}
        _, body = await _call(s, fake, "sendMessage", chat_id=5, text="card", reply_markup=markup)
        mid = body["result"]["message_id"]
        status, body = await _call(s, fake, "editMessageText", chat_id=5, message_id=mid, text="card", reply_markup=markup)
        assert status == 400 and "message is not modified" in body["description"]
        status, body = await _call(s, fake, "editMessageText", chat_id=5, message_id=mid, text="card, decided")
        assert status == 200 and "reply_markup" not in body["result"]
        status, body = await _call(s, fake, "editMessageText", chat_id=5, message_id=mid + 100, text="x")
        assert status == 400 and "not found" in body["description"]

        fake.fail_next("sendMessage", 429, retry_after=3)
        status, body = await _call(s, fake, "sendMessage", chat_id=5, text="hi")
        assert status == 429 and body["parameters"] == {"retry_after": 3}
        status, _ = await _call(s, fake, "sendMessage", chat_id=5, text="hi")
        assert status == 200  # only the next call fails

        assert (await _call(s, fake, "setMyCommands", commands=[{"command": "status", "description": "d"}]))[1]["result"] is True
        assert (await _call(s, fake, "getMyCommands"))[1]["result"] == [{"command": "status", "description": "d"}]
        assert [c.ok for c in fake.calls if c.method == "sendMessage"] == [False, True, False, True, False, True]
        assert [p["text"] for p in fake.sent()] == ["price 1.5", "card", "hi"]


async def test_get_updates_long_polls_and_honours_offset() -> None:
    async with run_fake_telegram() as fake, aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        _, body = await _call(s, fake, "getUpdates", timeout=0.4)
        assert body["result"] == [] and time.monotonic() - t0 >= 0.35

        poll = asyncio.create_task(_call(s, fake, "getUpdates", timeout=2))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await fake.inject_message(7, 7, "/status")
        _, body = await poll
        assert time.monotonic() - t0 < 1.0  # woken by the update, not by the timeout
        first = body["result"][0]
        assert first["message"]["text"] == "/status" and first["message"]["entities"][0]["type"] == "bot_command"

        await fake.inject_callback(7, 7, 42, "skip:X-1-0")
        _, body = await _call(s, fake, "getUpdates", offset=first["update_id"])
        assert [u["update_id"] for u in body["result"]] == [first["update_id"], first["update_id"] + 1]
        _, body = await _call(s, fake, "getUpdates", offset=first["update_id"] + 1)
        assert [u["callback_query"]["data"] for u in body["result"]] == ["skip:X-1-0"]
        _, body = await _call(s, fake, "getUpdates", offset=first["update_id"] + 2)
        assert body["result"] == []


@pytest.mark.parametrize("mode", ["502", "refused"])
async def test_outage_and_recovery(mode: str) -> None:
    async with run_fake_telegram() as fake:
        port = fake.port
        async with aiohttp.ClientSession() as s:
            await fake.set_outage(True, mode)
            if mode == "502":
                async with s.post(f"{fake.base_url}{fake.token}/getMe") as resp:
                    assert resp.status == 502
            else:
                with pytest.raises(aiohttp.ClientConnectionError):
                    await _call(s, fake, "getMe")
            await fake.set_outage(False)
            assert fake.port == port
            assert (await _call(s, fake, "getMe"))[0] == 200
        with pytest.raises(ValueError):
            await fake.set_outage(True, "sometimes")


def test_cli_serves_the_control_api() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sim", "telegram", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["base_url"].startswith("http://127.0.0.1:") and ready["control"].endswith("/_tg")

        async def drive() -> None:
            async with aiohttp.ClientSession() as s:
                async with s.post(ready["control"] + "/inject", json={"kind": "message", "user_id": 9, "text": "/help"}) as resp:
                    assert resp.status == 200 and (await resp.json())["update_id"] == 1
                async with s.post(ready["control"] + "/inject", json={"kind": "nonsense"}) as resp:
                    assert resp.status == 400 and "kind must be" in (await resp.json())["error"]
                async with s.post(ready["control"] + "/inject", data=b"{not json") as resp:
                    assert resp.status == 400
                async with s.post(ready["base_url"] + "123456:TEST-TOKEN/getUpdates", json={}) as resp:
                    assert (await resp.json())["result"][0]["message"]["from"]["id"] == 9
                async with s.get(ready["control"] + "/calls") as resp:
                    assert [c["method"] for c in await resp.json()] == ["getUpdates"]

        asyncio.run(drive())
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
