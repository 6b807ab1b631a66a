"""The fake Bot API's photos, captions, pins and flood control (a part of sim/fake_telegram.py's FakeTelegram).

Why apart: the fake's text-message core is one module; these are the methods cards with charts,
the pinned stats message and the rate-limit tests need. Flood control answers like Telegram: more
calls into one chat than the chat's limit in its span, or more than the global limit in a second,
get a 429 with `retry_after` (whole seconds until the window frees, at least 1).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# Methods that Telegram counts against a chat's message limits.
COUNTED = ("sendMessage", "sendPhoto", "editMessageText", "editMessageCaption", "editMessageReplyMarkup", "pinChatMessage")
MAX_CAPTION = 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ApiError(Exception):
    """A 400 answer; the argument is the API's description."""


@dataclass
class FakeTelegramMedia:
    """Fields and methods FakeTelegram inherits; see the module docstring."""

    flood_per_chat: tuple[int, float] | None = None  # (calls, span_s) per chat; None: no flood control
    flood_global: tuple[int, float] | None = None  # (calls, span_s) over every chat
    pinned: dict[int, int] = field(default_factory=dict)  # chat -> pinned message id
    _flood_log: dict[int | None, deque[float]] = field(default_factory=dict)

    def set_flood(self, per_chat: tuple[int, float] | None, overall: tuple[int, float] | None = None) -> None:
        """Answer 429 above these limits, as Telegram does (e.g. per_chat=(1, 1.0), overall=(30, 1.0))."""
        self.flood_per_chat, self.flood_global = per_chat, overall
        self._flood_log.clear()

    def flood_retry_after(self, method: str, params: dict[str, Any]) -> int | None:
        """retry_after seconds when this call breaks a limit (then it is not counted), else None (it is counted)."""
        if method not in COUNTED or (self.flood_per_chat is None and self.flood_global is None):
            return None
        now = time.monotonic()
        try:
            chat = int(params.get("chat_id", 0))
        except (TypeError, ValueError):
            chat = 0
        checks = [(chat, self.flood_per_chat), (None, self.flood_global)]
        for key, limit in checks:
            if limit is None:
                continue
            times = self._flood_log.setdefault(key, deque())
            while times and times[0] <= now - limit[1]:
                times.popleft()
            if len(times) >= limit[0]:
                return max(1, math.ceil(times[0] + limit[1] - now))
        for key, limit in checks:
            if limit is not None:
                self._flood_log[key].append(now)
        return None

    # --- methods (FakeTelegram.handle dispatches _m_<method>) ---------------------------------------

    def _stored(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._messages.get((int(p["chat_id"]), int(p["message_id"])))  # type: ignore[attr-defined]
        if msg is None:
            raise ApiError("Bad Request: message to edit not found")
        return msg

    def _check_caption(self, p: dict[str, Any]) -> str:
        from sim.fake_telegram import markdown_v2_error

        caption = str(p.get("caption", ""))
        if len(caption) > MAX_CAPTION:
            raise ApiError("Bad Request: message caption is too long")
        if p.get("parse_mode") == "MarkdownV2" and (err := markdown_v2_error(caption)):
            raise ApiError(f"Bad Request: {err}")
        return caption

    async def _m_sendPhoto(self, p: dict[str, Any], files: dict[str, bytes]) -> Any:
        photo = files.get("photo", b"")
        if not photo.startswith(PNG_MAGIC):
            raise ApiError("Bad Request: IMAGE_PROCESS_FAILED")
        caption = self._check_caption(p)
        chat_id = int(p["chat_id"])
        msg: dict[str, Any] = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},  # type: ignore[attr-defined]
                               "photo": [{"file_id": f"photo{len(photo)}", "file_unique_id": "u", "width": 800, "height": 450}],
                               "caption": caption, "png": photo}  # fmt: skip
        if isinstance(p.get("reply_markup"), dict):
            msg["reply_markup"] = p["reply_markup"]
        self._messages[(chat_id, msg["message_id"])] = msg  # type: ignore[attr-defined]
        return {k: v for k, v in msg.items() if k != "png"}

    async def _m_editMessageCaption(self, p: dict[str, Any], files: dict[str, bytes]) -> Any:
        msg = self._stored(p)
        if "photo" not in msg:
            raise ApiError("Bad Request: there is no caption in the message to edit")
        caption = self._check_caption(p)
        if msg.get("caption") == caption and msg.get("reply_markup") == p.get("reply_markup"):
            raise ApiError("Bad Request: message is not modified: specified new message content and reply markup are exactly the same")
        msg["caption"] = caption
        msg.pop("reply_markup", None)
        if isinstance(p.get("reply_markup"), dict):
            msg["reply_markup"] = p["reply_markup"]
        return {k: v for k, v in msg.items() if k != "png"}

    def png(self, chat_id: int, message_id: int) -> bytes:
        """The PNG a photo message carries (KeyError when there is none)."""
        return self._messages[(chat_id, message_id)]["png"]  # type: ignore[attr-defined]

    async def _m_pinChatMessage(self, p: dict[str, Any], files: dict[str, bytes]) -> Any:
        self._stored(p)
        self.pinned[int(p["chat_id"])] = int(p["message_id"])
        return True


__all__ = ["FakeTelegramMedia", "ApiError", "COUNTED"]
