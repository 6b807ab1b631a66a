"""`make demo` with Telegram: the card reaches a Bot API, a person can answer it from a shell, and
the demo leaves nothing behind.

The README tells a newcomer to run `python -m supervisor --demo --telegram` (or to set TG_TOKEN,
TG_BASE_URL and ALLOWED_IDS) and then to talk to the bot with curl through the fake Bot API's
control endpoints; these tests walk exactly that path: the demo at a high market speed, the card
with its Buy/Skip keyboard, /status answered, Skip pressed and the card edited, and the demo's
temporary data directory gone once it stops (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sim.fake_telegram import run_fake_telegram
from tests.test_pipeline_emulator import _free_port

REPO = Path(__file__).resolve().parent.parent


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait(predicate: Callable[[], Any], timeout: float, step: float = 0.5) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(step)
    return None


def _demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The demo as `make demo` starts it, with its temp dirs under tmp_path (TMPDIR) to look at."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    full = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "METRICS_PORT": str(_free_port())}
    for key in ("TG_TOKEN", "TG_BASE_URL", "ALLOWED_IDS"):
        full.pop(key, None)
    full.update(env or {})
    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115 - the child holds it; closed when the test's tmp dir goes
    return subprocess.Popen([sys.executable, "-m", "supervisor", "--demo", "--pairs", "60", "--speed", "6", *args], cwd=REPO, env=full,
                            stdout=log, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _stop(proc: subprocess.Popen[str], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(40)
    finally:
        if proc.poll() is None:
            proc.kill()


def _family(proc: subprocess.Popen[str]) -> list[Any]:
    """Every process the demo started (emulator, fake Bot API, scanner and its workers)."""
    import psutil

    return psutil.Process(proc.pid).children(recursive=True)


def _all_gone(family: list[Any]) -> bool:
    import psutil

    return not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.timeout(150)
def test_demo_with_telegram_sends_the_card_to_the_fake_bot_api_and_answers_commands_and_buttons(tmp_path: Path) -> None:
    port = _free_port()
    demo = _demo(tmp_path, "--telegram", "--telegram-port", str(port))
    control = f"http://127.0.0.1:{port}/_tg"
    try:

        def card() -> dict[str, Any] | None:
            for call in _get_json(control + "/calls"):
                keyboard = (call["params"].get("reply_markup") or {}).get("inline_keyboard", [])
                data = [b["callback_data"] for row in keyboard for b in row]
                if call["method"] in ("sendMessage", "sendPhoto") and call["ok"] and any(d.startswith("buy:") for d in data) and any(d.startswith("skip:") for d in data):
                    return call
            return None

        start = time.monotonic()
        sent = _wait(card, timeout=100)
        assert sent, "no card with Buy/Skip reached the fake Bot API:\n" + (tmp_path / "demo.log").read_text()[-3000:]
        print(f"card after {time.monotonic() - start:.1f}s")
        assert str(sent["params"]["chat_id"]) == "4242"  # the demo's allowed user
        assert (tmp_path / "tmp").iterdir(), "the demo's data dir exists while it runs"

        # The README's curl lines: a command, then a button press on the newest card.
        status, body = _post(control + "/inject", {"kind": "message", "text": "/status"})
        assert status == 200 and body["ok"], body
        assert _wait(lambda: any("frames/s" in m["text"] for m in _get_json(control + "/messages")), timeout=20), _get_json(control + "/messages")
        # The futures feed is on by default and the demo points it at the emulator's contract API.
        status_text = next(m["text"] for m in _get_json(control + "/messages") if "frames/s" in m["text"])
        assert "futures: link up, 50 contracts" in status_text, status_text
        status, body = _post(control + "/inject", {"kind": "press", "button": "Skip"})
        assert status == 200 and body["ok"], body

        def skipped() -> bool:
            card_msg = next(m for m in _get_json(control + "/messages") if m["message_id"] == sent["result"]["message_id"])
            return "Skipped" in card_msg["text"] and card_msg["buttons"] == []

        assert _wait(skipped, timeout=20)
        transcript = urllib.request.urlopen(control + "/transcript", timeout=5).read().decode()
        assert "[Buy $100] [Skip]" in transcript and "user 4242 wrote in chat 4242: /status" in transcript and "Skipped by 4242" in transcript
        assert "DEMO-TOKEN" not in transcript
        family = _family(demo)
    finally:
        code = _stop(demo, signal.SIGINT)  # Ctrl-C
    assert code == 0, (tmp_path / "demo.log").read_text()[-3000:]
    assert list((tmp_path / "tmp").iterdir()) == [], "the demo left its temp dir behind"
    assert _wait(lambda: _all_gone(family), timeout=10)


@pytest.mark.timeout(90)
def test_demo_keeps_the_callers_telegram_settings_and_removes_its_temp_dir_on_sigterm(tmp_path: Path) -> None:
    token = "555:CALLER-TOKEN-abc"
    tg = subprocess.Popen([sys.executable, "-m", "sim", "telegram", "--token", token], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(tg.stdout.readline())  # type: ignore[union-attr]
        demo = _demo(tmp_path, env={"TG_TOKEN": token, "TG_BASE_URL": ready["base_url"], "ALLOWED_IDS": "77"})
        try:
            # The bot process, started with the caller's token, introduces itself to that Bot API.
            assert _wait(lambda: any(c["method"] == "getUpdates" for c in _get_json(ready["control"] + "/calls")), timeout=60), (
                (tmp_path / "demo.log").read_text()[-3000:]
            )
            assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("scanner-demo-")]
            family = _family(demo)
        finally:
            code = _stop(demo, signal.SIGTERM)
        assert code == 0, (tmp_path / "demo.log").read_text()[-3000:]
        assert list((tmp_path / "tmp").iterdir()) == [], "the demo left its temp dir behind"
        assert token not in (tmp_path / "demo.log").read_text()
        assert _wait(lambda: _all_gone(family), timeout=10)
    finally:
        tg.terminate()
        tg.wait(10)


async def test_fake_bot_api_control_press_messages_and_transcript_for_a_person_with_curl() -> None:
    async with run_fake_telegram() as fake, aiohttp.ClientSession() as s:
        fake.default_user_id = 4242
        control = f"http://127.0.0.1:{fake.port}/_tg"
        markup = {"inline_keyboard": [[{"text": "Buy $100", "callback_data": "buy:A-1"}, {"text": "Skip", "callback_data": "skip:A-1"}]]}
        async with s.post(f"{fake.base_url}{fake.token}/sendMessage", json={"chat_id": 4242, "text": "card A", "reply_markup": markup}) as resp:
            first = (await resp.json())["result"]["message_id"]
        markup_b = {"inline_keyboard": [[{"text": "Buy $100", "callback_data": "buy:B-1"}, {"text": "Skip", "callback_data": "skip:B-1"}]]}
        async with s.post(f"{fake.base_url}{fake.token}/sendMessage", json={"chat_id": 4242, "text": "card B", "reply_markup": markup_b}) as resp:
            second = (await resp.json())["result"]["message_id"]

        async def inject(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            async with s.post(control + "/inject", data=json.dumps(body)) as resp:  # as curl -d sends it: no JSON content type
                return resp.status, await resp.json()

        assert (await inject({"kind": "message", "text": "/status"}))[0] == 200  # user_id defaults to --user-id
        assert (await inject({"kind": "press", "button": "skip"}))[0] == 200  # newest card, label prefix, any case
        assert (await inject({"kind": "press", "button": "Buy", "message_id": first}))[0] == 200
        status, body = await inject({"kind": "press", "button": "Sell"})
        assert status == 400 and "no button 'Sell'" in body["error"]
        updates = fake._updates
        assert updates[0]["message"]["from"]["id"] == 4242 and updates[0]["message"]["text"] == "/status"
        assert [(u["callback_query"]["data"], u["callback_query"]["message"]["message_id"]) for u in updates[1:]] == [("skip:B-1", second),
                                                                                                                       ("buy:A-1", first)]  # fmt: skip

        async with s.post(f"{fake.base_url}{fake.token}/editMessageText", json={"chat_id": 4242, "message_id": second, "text": "card B, skipped"}):
            pass
        async with s.post(f"{fake.base_url}{fake.token}/answerCallbackQuery", json={"callback_query_id": "cq2", "text": "Ignored"}):
            pass
        async with s.get(control + "/messages") as resp:
            messages = await resp.json()
        assert [(m["message_id"], m["text"], [b["text"] for b in m["buttons"]]) for m in messages] == [
            (first, "card A", ["Buy $100", "Skip"]), (second, "card B, skipped", [])]  # fmt: skip
        async with s.get(control + "/transcript") as resp:
            transcript = await resp.text()
        assert transcript.splitlines() == [
            f"bot sent #{first} in chat 4242:", "    card A", "    [Buy $100] [Skip]",
            f"bot sent #{second} in chat 4242:", "    card B", "    [Buy $100] [Skip]",
            "user 4242 wrote in chat 4242: /status", f"user 4242 pressed [skip:B-1] on #{second}", f"user 4242 pressed [buy:A-1] on #{first}",
            f"bot edited #{second} in chat 4242:", "    card B, skipped", "bot answered the press: Ignored",
        ]  # fmt: skip

        fake.default_user_id = None
        status, body = await inject({"kind": "message", "text": "/help"})
        assert status == 400 and "user_id" in body["error"]
