"""A fake Telegram Bot API on loopback that python-telegram-bot accepts as base_url.

Records every call (method, parameters, arrival time) so tests see exactly the cards, buttons and
answers a user would; serves injected user messages and button presses through getUpdates; and
answers errors like the real API (400 with a description, 429 with retry_after, "message is not
modified"), including a MarkdownV2 check that refuses unescaped reserved characters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sim.fake_telegram_media import ApiError as _ApiError
from sim.fake_telegram_media import FakeTelegramMedia
from sim.telegram_markdown import markdown_v2_error

BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Scanner", "username": "scanner_test_bot", "can_join_groups": False,
            "can_read_all_group_messages": False, "supports_inline_queries": False}  # fmt: skip


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at_ns: int
    ok: bool = True  # False when the fake answered with an error
    result: Any = None  # what the fake answered on success (a sent message carries its message_id)


@dataclass
class FakeTelegram(FakeTelegramMedia):
    token: str = "123456:TEST-TOKEN"
    calls: list[Call] = field(default_factory=list)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update: int = 1
    _next_message: int = 1
    _messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    _fail: list[tuple[str, int, int]] = field(default_factory=list)
    outage: bool = False
    long_poll_cap_s: float = 2.0  # shorter than a real long poll so clients shut down quickly
    outage_mode: str = "502"  # "502": a proxy answers Bad Gateway; "refused": nothing listens
    port: int = 0
    _site: web.TCPSite | None = None
    _commands: list[Any] = field(default_factory=list)
    _cond: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None
    default_user_id: int | None = None  # who the control API speaks as when a request names nobody
    _chat: list[tuple[int, str]] = field(default_factory=list)  # (arrival ns, line) for /_tg/transcript
    answer_delay_s: float = 0.0  # a slow Bot API: a send is in the chat at once, its answer comes this much later

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # --- injection and assertions ----------------------------------------------------------------

    async def _push(self, update: dict[str, Any]) -> dict[str, Any]:
        update["update_id"] = self._next_update
        self._next_update += 1
        self._updates.append(update)
        assert self._cond is not None, "start() the fake before injecting"
        async with self._cond:
            self._cond.notify_all()
        return update

    async def inject_message(self, user_id: int, chat_id: int, text: str) -> dict[str, Any]:
        """A user types text in chat_id (a private chat has chat_id == user_id); returns the update."""
        msg: dict[str, Any] = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                               "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}, "text": text}  # fmt: skip
        self._log(f"user {user_id} wrote in chat {chat_id}: {text}")
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return await self._push({"message": msg})

    async def inject_callback(self, user_id: int, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
        """A user presses a button carrying data under message_id in chat_id; returns the update."""
        known = self._messages.get((chat_id, message_id))
        message = {k: v for k, v in known.items() if k != "png"} if known else {"message_id": message_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"}, "text": ""}
        self._log(f"user {user_id} pressed [{data}] on #{message_id}")
        return await self._push({"callback_query": {"id": f"cq{self._next_update}", "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
                                                    "chat_instance": "ci", "data": data, "message": message}})  # fmt: skip

    async def press(self, user_id: int, button: str, message_id: int | None = None, chat_id: int | None = None) -> dict[str, Any]:
        """A user presses the button whose label starts with `button` (or whose callback_data is
        `button`) on message_id, by default on the newest message that still shows such a button.

        Why: a person trying the bot from a shell knows "Skip on the last card", not the card's
        message id and callback data; this finds them the way their eyes would.
        """
        want = button.strip().lower()
        for (chat, mid), msg in sorted(self._messages.items(), key=lambda kv: kv[0][1], reverse=True):
            if (message_id is not None and mid != message_id) or (chat_id is not None and chat != chat_id):
                continue
            for row in (msg.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    data = str(b.get("callback_data", ""))
                    if data and (str(b.get("text", "")).lower().startswith(want) or data == button):
                        return await self.inject_callback(user_id, chat, mid, data)
        where = f"message {message_id}" if message_id is not None else "any message"
        raise LookupError(f"no button {button!r} on {where}")

    def messages(self) -> list[dict[str, Any]]:
        """The bot's messages as the user sees them now (after edits), oldest first."""
        out = []
        for (chat, mid), msg in sorted(self._messages.items(), key=lambda kv: kv[0][1]):
            buttons = [{"text": b.get("text"), "callback_data": b.get("callback_data")}
                       for row in (msg.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]  # fmt: skip
            out.append({"chat_id": chat, "message_id": mid, "text": msg.get("text", msg.get("caption", "")), "buttons": buttons,
                        "photo": "photo" in msg})  # fmt: skip
        return out

    def _log(self, line: str) -> None:
        self._chat.append((time.time_ns(), line))

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1) -> None:
        """The next call of method fails: 429 with retry_after like flood control, else that status."""
        self._fail.append((method, status, retry_after))

    async def set_outage(self, on: bool, mode: str = "502") -> None:
        """Telegram unreachable: every call gets 502, or (mode "refused") the port stops listening
        and open keep-alive connections are dropped, as when the network path is gone."""
        if mode not in ("502", "refused"):
            raise ValueError("outage mode must be '502' or 'refused'")
        was_refusing = self.outage and self.outage_mode == "refused"
        self.outage, self.outage_mode = on, mode
        if on and mode == "refused" and not was_refusing and self._site is not None:
            await self._site.stop()
            self._site = None
        elif was_refusing and not (on and mode == "refused"):
            await self._listen(self.port)

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        """Parameters of the calls of `method` that the API accepted (what the user saw)."""
        return [c.params for c in self.calls if c.method == method and c.ok]

    # --- the API ---------------------------------------------------------------------------------

    def _new_message_id(self) -> int:
        self._next_message += 1
        return self._next_message

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        if self.outage:
            return self._outage_answer(request)
        if token != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params, files = await self._params(request)
        call = Call(method, params, time.time_ns())
        self.calls.append(call)
        if (retry_after := self.flood_retry_after(method, params)) is not None:
            self._fail.insert(0, (method, 429, retry_after))
        for i, (m, status, retry_after) in enumerate(self._fail):
            if m == method:
                del self._fail[i]
                call.ok = False
                if status == 429:
                    return web.json_response({"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                                              "parameters": {"retry_after": retry_after}}, status=429)  # fmt: skip
                return web.json_response({"ok": False, "error_code": status, "description": "Injected failure"}, status=status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return web.json_response({"ok": True, "result": True})
        try:
            result = await (handler(params, files) if method in ("sendPhoto", "editMessageCaption", "pinChatMessage") else handler(params))
        except _Outage:
            call.ok = False
            return self._outage_answer(request)
        except _ApiError as exc:
            call.ok = False
            return web.json_response({"ok": False, "error_code": 400, "description": exc.args[0]}, status=400)
        call.result = result
        self._log_call(method, params, result)
        if self.answer_delay_s > 0 and method.startswith("send"):
            await asyncio.sleep(self.answer_delay_s)
        return web.json_response({"ok": True, "result": result})

    def _log_call(self, method: str, p: dict[str, Any], result: Any) -> None:
        """What the user would notice of an accepted call, for the plain-text transcript."""
        if method in ("sendMessage", "editMessageText", "sendPhoto", "editMessageCaption") and isinstance(result, dict):
            verb = ("sent" if method.startswith("send") else "edited") + (" a chart photo" if "photo" in result else "")
            labels = " ".join(f"[{b.get('text')}]" for row in (result.get("reply_markup") or {}).get("inline_keyboard", []) for b in row)
            text = str(result.get("text", result.get("caption", "")))
            if p.get("parse_mode") == "MarkdownV2":
                text = re.sub(r"\\(.)", r"\1", text)  # read as the app shows it: 1\.5 is 1.5
            body = "\n    ".join(text.splitlines())
            self._log(f"bot {verb} #{result['message_id']} in chat {result['chat']['id']}:\n    {body}" + (f"\n    {labels}" if labels else ""))
        elif method == "editMessageReplyMarkup" and isinstance(result, dict) and not result.get("reply_markup"):
            self._log(f"bot removed the buttons of #{result['message_id']}")
        elif method == "answerCallbackQuery" and p.get("text"):
            self._log(f"bot answered the press: {p['text']}")

    def _outage_answer(self, request: web.Request) -> web.Response:
        if self.outage_mode == "refused" and request.transport is not None:
            request.transport.close()  # a kept-alive connection must not outlive the outage
        return web.Response(status=502, text="Bad Gateway")

    @staticmethod
    async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The call's parameters (an upload shows as "<N bytes>", so /_tg/calls stays JSON) and its uploaded files."""
        if request.content_type == "application/json":
            data = await request.json()
            return (data if isinstance(data, dict) else {}), {}
        form = await request.post()
        out: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
                out[key] = f"<{len(files[key])} bytes>"
                continue
            text = value if isinstance(value, str) else str(value)
            try:
                out[key] = json.loads(text)
            except ValueError:
                out[key] = text
        return out, files

    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        offset = int(p.get("offset") or 0)
        timeout = min(float(p.get("timeout") or 0), self.long_poll_cap_s)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            assert self._cond is not None
            async with self._cond:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._cond.wait(), timeout)
        if self.outage:
            raise _Outage
        return [u for u in self._updates if u["update_id"] >= offset][:100]

    def _check_text(self, p: dict[str, Any]) -> str:
        text = str(p.get("text", ""))
        if not text:
            raise _ApiError("Bad Request: message text is empty")
        if p.get("parse_mode") == "MarkdownV2":
            err = markdown_v2_error(text)
            if err:
                raise _ApiError(f"Bad Request: {err}")
        markup = p.get("reply_markup")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if len(str(button.get("callback_data", "")).encode()) > 64:
                        raise _ApiError("Bad Request: BUTTON_DATA_INVALID")
        return text

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        text = self._check_text(p)
        chat_id = int(p["chat_id"])
        msg = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER, "text": text}
        if isinstance(p.get("reply_markup"), dict):
            msg["reply_markup"] = p["reply_markup"]
        self._messages[(chat_id, msg["message_id"])] = msg
        return msg

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        text = self._check_text(p)
        key = (int(p["chat_id"]), int(p["message_id"]))
        msg = self._messages.get(key)
        if msg is None:
            raise _ApiError("Bad Request: message to edit not found")
        if msg.get("text") == text and msg.get("reply_markup") == p.get("reply_markup"):
            raise _ApiError("Bad Request: message is not modified: specified new message content and reply markup are exactly the same")
        msg["text"] = text
        msg.pop("reply_markup", None)
        if isinstance(p.get("reply_markup"), dict):
            msg["reply_markup"] = p["reply_markup"]
        return msg

    async def _m_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        msg = self._stored(p)
        msg.pop("reply_markup", None)
        if isinstance(p.get("reply_markup"), dict):
            msg["reply_markup"] = p["reply_markup"]
        return msg

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        if not p.get("callback_query_id"):
            raise _ApiError("Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    async def _m_getMyCommands(self, p: dict[str, Any]) -> Any:
        return self._commands

    async def _m_setMyCommands(self, p: dict[str, Any]) -> Any:
        commands = p.get("commands")
        self._commands = commands if isinstance(commands, list) else []
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        return True

    # --- lifecycle -------------------------------------------------------------------------------

    async def _inject_http(self, request: web.Request) -> web.Response:
        """Control API for out-of-process runs: {"kind": "message"|"callback"|"outage"|"fail", ...}."""
        try:
            body = await request.json()
            kind = body.get("kind")
            if kind == "message":
                user = self._user(body)
                update = await self.inject_message(user, int(body.get("chat_id", user)), str(body["text"]))
            elif kind == "callback":
                user = self._user(body)
                update = await self.inject_callback(user, int(body.get("chat_id", user)), int(body["message_id"]), str(body["data"]))
            elif kind == "press":
                mid, chat = body.get("message_id"), body.get("chat_id")
                update = await self.press(self._user(body), str(body["button"]), None if mid is None else int(mid), None if chat is None else int(chat))
            elif kind == "outage":
                await self.set_outage(bool(body.get("on", True)), str(body.get("mode", "502")))
                update = {}
            elif kind == "fail":
                self.fail_next(str(body["method"]), int(body.get("status", 429)), int(body.get("retry_after", 1)))
                update = {}
            else:
                raise ValueError("kind must be message, press, callback, outage or fail")
        except (ValueError, KeyError, TypeError, AttributeError, LookupError) as exc:
            return web.json_response({"ok": False, "error": f"bad control request: {exc!r}"}, status=400)
        return web.json_response({"ok": True, "update_id": update.get("update_id")})

    def _user(self, body: dict[str, Any]) -> int:
        """The request's user_id, else the fake's default user (--user-id), else a KeyError."""
        if "user_id" in body:
            return int(body["user_id"])
        if self.default_user_id is None:
            raise KeyError("user_id (no --user-id default)")
        return self.default_user_id

    async def _calls_http(self, request: web.Request) -> web.Response:
        return web.json_response([{"method": c.method, "params": c.params, "at_ns": c.at_ns, "ok": c.ok, "result": c.result} for c in self.calls])

    async def _messages_http(self, request: web.Request) -> web.Response:
        return web.json_response(self.messages())

    async def _transcript_http(self, request: web.Request) -> web.Response:
        """The chat as plain text, oldest first: what a person would read in their Telegram app."""
        return web.Response(text="".join(line + "\n" for _, line in self._chat))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._cond = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        app.router.add_get("/bot{token}/{method}", self.handle)
        app.router.add_post("/_tg/inject", self._inject_http)
        app.router.add_get("/_tg/calls", self._calls_http)
        app.router.add_get("/_tg/messages", self._messages_http)
        app.router.add_get("/_tg/transcript", self._transcript_http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await self._listen(port, host)

    async def _listen(self, port: int, host: str = "127.0.0.1") -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        server = self._site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class _Outage(Exception):
    """An outage began while a long poll was waiting."""


@contextlib.asynccontextmanager
async def run_fake_telegram(token: str = "123456:TEST-TOKEN") -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=token)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim telegram", description="Fake Telegram Bot API on loopback.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--user-id", type=int, default=None, help="the user /_tg/inject speaks as when a request names no user_id")
    args = parser.parse_args(argv)

    async def serve() -> int:
        fake = FakeTelegram(token=args.token, default_user_id=args.user_id)
        await fake.start(port=args.port)
        print(json.dumps({"base_url": fake.base_url, "control": f"http://127.0.0.1:{fake.port}/_tg"}), flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
        await fake.stop()
        return 0

    return asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
