"""The bot process: Telegram cards, buttons and commands, in its own process and event loop.

Why its own process: a Telegram outage or a slow Bot API must never stall scoring. The bot talks
to the supervisor over a pipe (signal notifications in, status/config requests out) and reads
signals from the SQLite outbox, so a killed bot resends, on restart, every card it had not sent.

Authorisation: every command and every button press checks the Telegram user id against
telegram.allowed_ids; anyone else gets no answer at all and changes nothing (logged by id only).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal as signals
import time
from multiprocessing.connection import Connection
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.cards import card_text, decided_text, escape, keyboard
from bot.storage import Store
from bot.trading import Trader
from common.config import Config, ConfigError, set_value
from common.logs import setup_logging
from common.signal import Signal, is_valid_signal_id

log = logging.getLogger("scanner.bot")
VERSION = "0.1.0"
REQUEST_TIMEOUT_S = 5.0
HELP = (
    "/status — processes, links, frames/s, latency\n/stats — signals, buys, skips (24 h)\n/cfg — live config; /cfg key value — change it\n"
    "/reload — re-read config.yaml\n/pause, /resume — alerts\n/health, /version, /help"
)


class Bot:
    """Owns the PTB application, the trader and the pipe to the supervisor."""

    def __init__(self, config: Config, conn: Connection | None, store: Store | None = None, trader: Trader | None = None) -> None:
        self.config = config
        self.conn = conn
        self.store = store or Store(config.storage.data_dir)
        self.trader = trader or Trader(config, self.store)
        self.paused = False
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._send_event = asyncio.Event()
        self._stop = asyncio.Event()
        self.sent_cards = 0
        builder = (
            Application.builder()
            .token(config.telegram.token)
            .base_url(config.telegram.base_url)
            .rate_limiter(AIORateLimiter(max_retries=3))
            .connect_timeout(config.telegram.send_timeout_s)
            .read_timeout(config.telegram.send_timeout_s)
            .write_timeout(config.telegram.send_timeout_s)
            .get_updates_read_timeout(10)
        )
        self.app = builder.build()
        for name in ("start", "help", "status", "stats", "cfg", "reload", "pause", "resume", "health", "version"):
            self.app.add_handler(CommandHandler(name, self._command))
        self.app.add_handler(CallbackQueryHandler(self._callback))
        self.app.add_handler(MessageHandler(filters.ALL, self._other))

    # --- authorisation -----------------------------------------------------------------------------

    def allowed(self, update: Update) -> bool:
        user = update.effective_user
        ok = user is not None and user.id in self.config.telegram.allowed_ids
        if not ok:
            log.warning("refused update from unauthorised user", extra={"user_id": user.id if user else None})
        return ok

    # --- supervisor pipe -----------------------------------------------------------------------------

    def _on_pipe(self) -> None:
        assert self.conn is not None
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if not isinstance(message, dict):
                    continue
                kind = message.get("type")
                if kind == "signal":
                    self._send_event.set()
                elif kind in ("status_reply", "cfg_reply"):
                    fut = self._pending.pop(int(message.get("req_id", -1)), None)
                    if fut is not None and not fut.done():
                        fut.set_result(message)
                elif kind == "config":
                    self._apply_public_config(message.get("values") or {})
                elif kind == "stop":
                    self._stop.set()
        except (EOFError, OSError):
            self._stop.set()

    def _apply_public_config(self, values: dict[str, dict[str, Any]]) -> None:
        new = self.config
        for section, keys in values.items():
            for key, value in keys.items():
                if value == "***":
                    continue
                try:
                    new = set_value(new, f"{section}.{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value))
                except ConfigError:
                    continue
        self.config = new
        self.trader.config = new

    async def ask_supervisor(self, message: dict[str, Any]) -> dict[str, Any] | None:
        if self.conn is None:
            return None
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            self.conn.send({**message, "req_id": req_id})
            return await asyncio.wait_for(fut, REQUEST_TIMEOUT_S)
        except (TimeoutError, OSError, ValueError):
            return None
        finally:
            self._pending.pop(req_id, None)

    # --- cards ---------------------------------------------------------------------------------------

    async def send_card(self, sig: Signal) -> bool:
        """Send one card to every allowed chat; True when Telegram accepted it everywhere."""
        markup = keyboard(sig.signal_id, self.config.trading.stake_usd)
        reply = InlineKeyboardMarkup([[InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row] for row in markup["inline_keyboard"]])
        text = card_text(sig)
        first: tuple[int, int] | None = None
        for chat_id in self.config.telegram.allowed_ids:
            message = await self.app.bot.send_message(chat_id, text, parse_mode=ParseMode.MARKDOWN_V2, reply_markup=reply)
            first = first or (chat_id, message.message_id)
        if first is None:
            return False
        self.store.mark_card_sent(sig.signal_id, first[0], first[1], time.time_ns())
        self.sent_cards += 1
        return True

    async def _send_loop(self) -> None:
        """Send every unsent card, oldest first; on a Telegram failure wait and retry (nothing lost)."""
        while not self._stop.is_set():
            self._send_event.clear()
            delay = 0.0
            for sig in self.store.unsent_signals():
                if self.paused:
                    self.store.mark_suppressed(sig.signal_id, "alerts paused")
                    continue
                if not self.config.telegram.allowed_ids:
                    self.store.mark_suppressed(sig.signal_id, "no allowed ids")
                    continue
                try:
                    await self.send_card(sig)
                except RetryAfter as exc:
                    delay = float(exc.retry_after if not hasattr(exc.retry_after, "total_seconds") else exc.retry_after.total_seconds())
                    break
                except (NetworkError, TimedOut) as exc:
                    log.warning("telegram send failed, will retry", extra={"error": type(exc).__name__})
                    delay = 2.0
                    break
                except BadRequest as exc:
                    log.error("telegram refused a card", extra={"signal_id": sig.signal_id, "error": str(exc)[:200]})
                    self.store.mark_suppressed(sig.signal_id, f"refused: {str(exc)[:100]}")
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_event.wait(), 5.0)

    # --- handlers --------------------------------------------------------------------------------------

    async def _reply(self, update: Update, text: str) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(text)

    async def _command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self.allowed(update) or update.effective_message is None or not update.effective_message.text:
            return
        parts = update.effective_message.text.split()
        name = parts[0][1:].split("@")[0].lower()
        args = parts[1:]
        if name in ("start", "help"):
            await self._reply(update, "MEXC pump scanner. Commands:\n" + HELP)
        elif name == "version":
            await self._reply(update, f"mexc-pump-scanner {VERSION}")
        elif name == "pause":
            self.paused = True
            await self._reply(update, "Alerts paused: signals are still stored, no cards are sent. /resume to continue.")
        elif name == "resume":
            self.paused = False
            await self._reply(update, "Alerts resumed.")
        elif name == "stats":
            s = self.store.stats(time.time_ns() - 24 * 3600 * 10**9)
            await self._reply(update, f"Last 24 h: {s['signals']} signals ({s['signals_per_hour']:.2f}/h), {s['buys']} buys, {s['skips']} skips, "
                                      f"{s['paper_orders']} paper and {s['live_orders']} live orders.")  # fmt: skip
        elif name in ("status", "health"):
            reply = await self.ask_supervisor({"type": "status_request"})
            if reply is None:
                await self._reply(update, "The supervisor did not answer within 5 s.")
            else:
                await self._reply(update, format_status(reply.get("status") or {}, health_only=name == "health"))
        elif name == "reload":
            reply = await self.ask_supervisor({"type": "reload"})
            await self._reply(update, "The supervisor did not answer within 5 s." if reply is None else reply.get("message", ""))
        elif name == "cfg":
            if not args:
                await self._reply(update, format_config(self.config.to_public_dict()))
            elif len(args) != 2:
                await self._reply(update, "Usage: /cfg section.key value   (e.g. /cfg scanner.vsr_min 6)")
            else:
                reply = await self.ask_supervisor({"type": "cfg_set", "key": args[0], "value": args[1]})
                if reply is None:
                    await self._reply(update, "The supervisor did not answer within 5 s; nothing changed.")
                else:
                    await self._reply(update, ("Changed: " if reply.get("ok") else "Refused, nothing changed: ") + str(reply.get("message", "")))

    async def _other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self.allowed(update):
            return
        await self._reply(update, "Unknown command. /help lists them.")

    async def _callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not self.allowed(update):
            return
        data = query.data or ""
        action, _, signal_id = data.partition(":")
        if action not in ("buy", "skip") or not is_valid_signal_id(signal_id):
            await query.answer("Unknown button.")
            return
        sig = self.store.get_signal(signal_id)
        if sig is None:
            await query.answer("This signal is not known any more.")
            return
        user = update.effective_user
        assert user is not None
        if not self.store.record_action(signal_id, user.id, action, time.time_ns()):
            previous = self.store.get_action(signal_id)
            await query.answer(f"Already decided: {previous[0] if previous else '?'}.")
            return
        if action == "skip":
            await query.answer("Ignored")
            line = f"⏭ Skipped by {user.id}"
        else:
            result = await self.trader.buy(sig, user.id)
            await query.answer(result.message[:190], show_alert=not result.ok)
            line = f"🛒 Buy by {user.id} ({result.mode}): {result.message}"
        sent_ns = self.store.card_sent_ns(signal_id) or time.time_ns()
        try:
            await query.edit_message_text(decided_text(card_text(sig, sent_ns), line), parse_mode=ParseMode.MARKDOWN_V2, reply_markup=None)
        except BadRequest as exc:
            if "not modified" not in str(exc):
                log.warning("could not edit card", extra={"error": str(exc)[:200]})

    # --- run ---------------------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.conn is not None:
            loop.add_reader(self.conn.fileno(), self._on_pipe)
            os.set_blocking(self.conn.fileno(), True)  # see supervisor.app._watch_pipe
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        await self._start_telegram()
        sender = loop.create_task(self._send_loop())
        await self._stop.wait()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        with contextlib.suppress(Exception):
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            await self.app.stop()
            await self.app.shutdown()
        await self.trader.close()
        self.store.close()

    async def _start_telegram(self) -> None:
        """initialize/start/poll by hand (never run_polling); retry while Telegram is unreachable."""
        delay = 1.0
        while not self._stop.is_set():
            try:
                await self.app.initialize()
                await self.app.start()
                assert self.app.updater is not None
                await self.app.updater.start_polling(poll_interval=0.0, timeout=2, drop_pending_updates=False)
                return
            except (NetworkError, TimedOut) as exc:
                log.warning("telegram unreachable, retrying", extra={"error": type(exc).__name__, "retry_in_s": delay})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                delay = min(delay * 2, 30.0)

    def stop(self) -> None:
        self._stop.set()


def format_status(status: dict[str, Any], health_only: bool = False) -> str:
    procs = status.get("processes", [])
    if health_only:
        return f"OK: {len(procs)} processes, {status.get('links', 0)} links, {status.get('pairs_watched', 0)} pairs."
    lines = [f"{p['name']}: CPU {p['cpu_percent']:.1f}%  RSS {p['rss_bytes'] / 2**20:.0f} MB  PSS {p['pss_bytes'] / 2**20:.0f} MB  up {p['uptime_s'] / 3600:.1f} h"
             for p in procs]  # fmt: skip
    p95 = status.get("latency_p95_ms")
    lines.append(
        f"links {status.get('links', 0)}, streams {status.get('streams', 0)}, {status.get('frames_per_s', 0.0):.0f} frames/s, "
        f"reconnects {status.get('reconnects', 0)}, latency p95 {'n/a' if p95 is None else f'{p95:.1f} ms'}, "
        f"pairs {status.get('pairs_watched', 0)}, signals 1 h {status.get('signals_last_hour', 0)}"
    )
    return "\n".join(lines)


def format_config(public: dict[str, dict[str, Any]]) -> str:
    return "\n".join(f"{section}.{key} = {value}" for section, keys in public.items() for key, value in keys.items())


def run_bot(config: Config, conn: Connection) -> None:
    """Process entry point (forked by the supervisor)."""
    setup_logging(config.logging.level, "bot", config.secrets())
    signals.signal(signals.SIGHUP, signals.SIG_IGN)

    async def main() -> None:
        await Bot(config, conn).run()

    asyncio.run(main())


__all__ = ["Bot", "run_bot", "format_status", "format_config", "escape"]
