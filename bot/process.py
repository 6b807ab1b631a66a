"""The bot process: Telegram cards, buttons and commands, in its own process and event loop.

Why its own process: a Telegram outage or a slow Bot API must never stall scoring. The bot talks
to the supervisor over a pipe (signal notifications in, status/config requests out) and reads
signals from the SQLite outbox, so a killed bot resends, on restart, every card it had not sent.

Authorisation (bot/auth.py): every command and every button press checks the Telegram user id
against telegram.allowed_ids; anyone else gets no answer at all and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal as signals
import time
from multiprocessing.connection import Connection
from typing import Any

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot import commands, positions
from bot.app import build_application, start_application, stop_application
from bot.auth import is_allowed
from bot.cards import escape, fill_text
from bot.daily import DailyStats
from bot.listings import send_listings
from bot.notifier import Notifier, retry_after_s
from bot.sender import CardSender
from bot.short_notices import ShortNotices
from common.child_pipe import ChildPipe
from common.children import reset_child_signals
from common.config import Config
from common.logs import setup_logging
from common.messages import (
    CfgReply,
    Closes,
    ConfigChanged,
    ListingStored,
    Message,
    Notice,
    OutcomeStored,
    ShortNotice,
    SignalStored,
    StatusReply,
    Stop,
    WatchPrices,
)
from common.signal import Signal, is_valid_signal_id
from store.history import Store
from trading.trader import Trader

log = logging.getLogger("scanner.bot")
MAX_TEXT = 4000  # Telegram refuses messages over 4096 characters
MAX_BACKOFF_S = 30.0
STOP_GRACE_S = 3.0  # a card in flight at Stop is finished and recorded (the supervisor waits 5 s)
CLOSES_MAX_AGE_S = 5.0  # older closes (a stalled feed) are not used for automatic exits: REST prices them
MAX_KEYED_NOTICES = 500  # start cards remembered for their end-of-episode edit (futures episodes last seconds)


class Bot:
    """Owns the PTB application, the trader and the pipe to the supervisor."""

    def __init__(self, config: Config, conn: Connection | None, store: Store | None = None, trader: Trader | None = None,
                 request_timeout_s: float = 5.0) -> None:  # fmt: skip
        self.config = config
        self.pipe = ChildPipe(conn, self._on_message, self._pipe_closed, log)  # common/child_pipe.py
        self.store = store or Store(config.storage.data_dir)
        self.trader = trader or Trader(config, self.store)
        self.paused = False
        self.request_timeout_s = request_timeout_s
        self.sent_cards = 0
        self.outcomes_seen = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._notices: list[Notice] = []
        self._notice_messages: dict[str, dict[int, int]] = {}  # Notice.key -> chat_id -> message_id
        self.short_notices = ShortNotices()  # the short watcher's messages (bot/short_notices.py)
        self.closes: dict[str, float] = {}  # the held pairs' newest 1 s closes (supervisor/exit_prices.py)
        self.closes_at = float("-inf")
        self.closes_event = asyncio.Event()  # wakes the automatic exits (bot/positions.py watch)
        self._watched_prices: list[str] = []  # what the supervisor was told (nothing held at start: nothing to say)
        self._ids = itertools.count(1)
        self._send_event = asyncio.Event()
        self._stop = asyncio.Event()
        self.app = build_application(config)
        self.notifier = Notifier(self.app.bot, config.telegram.cards)  # every message the bot sends goes through it
        self.cards = CardSender(config, self.store, self.notifier)  # every copy of a card is in the store (store/cards.py)
        self.daily = DailyStats(config, self.store, self.cards.cards, self.notifier)
        self.stats_dirty = False
        self._next_top = time.monotonic() + config.telegram.cards.top_interval_s  # the first periodic /top after one interval
        self.app.add_handler(CommandHandler(list(commands.NAMES) + list(positions.NAMES), self._command))
        self.app.add_handler(CallbackQueryHandler(self._callback))
        self.app.add_handler(MessageHandler(filters.ALL, self._other))
        self.app.add_error_handler(self._on_error)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed (often Telegram unreachable mid-answer): log the kind, never the update's text."""
        error = context.error
        user = update.effective_user.id if isinstance(update, Update) and update.effective_user else None
        log.warning("update handling failed", extra={"error": type(error).__name__, "detail": str(error)[:200], "user_id": user})

    # --- state the commands read ----------------------------------------------------------------------

    def stats(self, since_ns: int) -> dict[str, Any]:
        return self.store.stats(since_ns)

    def outcome_stats(self, since_ns: int) -> dict[str, Any]:
        return self.store.outcome_stats(since_ns)

    def unsent_count(self) -> int:
        return len(self.store.unsent_signals())

    def notify(self) -> None:
        """Wake the card sender (the supervisor stored a new signal)."""
        self._send_event.set()

    # --- supervisor pipe ---------------------------------------------------------------------------------

    def _pipe_closed(self) -> None:
        log.error("supervisor pipe closed, stopping")
        self._stop.set()

    def _on_message(self, message: Message) -> None:
        if isinstance(message, (SignalStored, ListingStored)):
            self._send_event.set()
        elif isinstance(message, OutcomeStored):
            # Already stored by the supervisor (store first, then tell); /stats reads the Store.
            self.outcomes_seen += 1
            self._send_event.set()  # the send loop edits the card (a follow-up) from the store
            log.info("outcome", extra={"signal_id": str(message.outcome.get("signal_id"))[:60],
                                       "outcome": str(message.outcome.get("outcome"))[:10]})  # fmt: skip
        elif isinstance(message, (StatusReply, CfgReply)):
            fut = self._pending.pop(message.req_id, None)
            if fut is not None and not fut.done():
                fut.set_result(message)
        elif isinstance(message, ConfigChanged):
            if isinstance(message.config, Config):
                self.config = message.config
                self.cards.config = self.daily.config = message.config
                self.notifier.update_limits(message.config.telegram.cards)
                if hasattr(self.trader, "config"):
                    self.trader.config = message.config
        elif isinstance(message, Notice):
            self._notices.append(message)
            self._send_event.set()
        elif isinstance(message, Closes):
            self.closes.update(message.prices)
            self.closes_at = time.monotonic()
            self.closes_event.set()
        elif isinstance(message, ShortNotice):
            self.short_notices.add(message)
            self._send_event.set()
        elif isinstance(message, Stop):
            self._stop.set()
        else:
            log.warning("ignored an unexpected pipe message", extra={"kind": type(message).__name__})

    async def ask_supervisor(self, kind: type[Any], **fields: Any) -> Any:
        """Send a request (StatusRequest, CfgSet, CfgSave, Reload) over the pipe; its reply, or None
        when there is no pipe or no answer in time."""
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            if not self.pipe.tell(kind(req_id=req_id, **fields)):
                return None
            return await asyncio.wait_for(fut, self.request_timeout_s)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(req_id, None)

    async def _send_notices(self) -> None:
        """Owner notices (a refused SIGHUP reload, an unhealthy service) to every allowed chat, best effort.

        A keyed notice remembers its messages (bounded: the oldest keys are forgotten first) so that
        its follow-up (Notice.edit) edits them in place; an edit Telegram refuses (message too old,
        deleted) is sent as a new message instead.
        """
        while self._notices and not self._stop.is_set():
            notice = self._notices[0]
            text = notice.text[:MAX_TEXT]
            sent = self._notice_messages.get(notice.key, {}) if notice.edit and notice.key else {}
            for chat_id in self.config.telegram.allowed_ids:
                try:
                    if chat_id in sent:
                        try:
                            await self.notifier.edit(chat_id, sent[chat_id], text, urgent=True)
                            continue
                        except BadRequest as exc:
                            log.info("notice edit refused, sending it anew", extra={"chat_id": chat_id, "error": str(exc)[:200]})
                    message = await self.notifier.send_text(chat_id, text, urgent=True)
                    if notice.key and not notice.edit:
                        self._notice_messages.setdefault(notice.key, {})[chat_id] = message.message_id
                except (BadRequest, Forbidden) as exc:
                    log.warning("telegram refused a notice for one chat", extra={"chat_id": chat_id, "error": str(exc)[:200]})
            if notice.edit:
                self._notice_messages.pop(notice.key, None)
            while len(self._notice_messages) > MAX_KEYED_NOTICES:
                self._notice_messages.pop(next(iter(self._notice_messages)))
            self._notices.pop(0)

    def watch_prices(self, symbols: list[str]) -> None:
        """Tell the supervisor which pairs the open positions hold (only when that changes)."""
        if symbols != self._watched_prices and self.pipe.tell(WatchPrices(symbols)):
            self._watched_prices = list(symbols)
            self.closes = {s: p for s, p in self.closes.items() if s in symbols}

    def fresh_closes(self) -> dict[str, float]:
        """The supervisor's 1 s closes if they are current, else {} (the exits then read REST)."""
        return dict(self.closes) if time.monotonic() - self.closes_at <= CLOSES_MAX_AGE_S else {}

    def card_copies(self, signal_id: str) -> dict[int, int]:
        """chat_id -> message_id of every copy of a card (store/cards.py), for replies threaded under it."""
        return {chat: message for chat, (message, _) in self.cards.cards.messages(signal_id).items()}

    # --- cards ------------------------------------------------------------------------------------------

    async def send_card(self, sig: Signal, behind: int = 0) -> bool:
        """Send one card to every target chat not yet reached (bot/sender.py); True when at least one chat has it."""
        sent = await self.cards.send(sig, behind)
        self.sent_cards += sent
        return sent

    async def _send_pending(self) -> float:
        """Send every unsent card, oldest first, then due follow-ups; returns how long to wait before retrying (0: done)."""
        try:
            await self._send_notices()
            unsent = self.store.unsent_signals()
            for n, sig in enumerate(unsent):
                if self._stop.is_set():
                    return 0.0
                if self.paused:
                    self.store.mark_suppressed(sig.signal_id, "alerts paused")
                    continue
                if not self.cards.targets():
                    self.store.mark_suppressed(sig.signal_id, "telegram.allowed_ids and telegram.chat_ids are empty")
                    continue
                try:
                    await self.send_card(sig, behind=len(unsent) - n - 1)
                except TelegramError as exc:
                    if not isinstance(exc, (RetryAfter, NetworkError)):
                        log.error("telegram error while sending a card", extra={"signal_id": sig.signal_id, "error": str(exc)[:200]})
                    raise
            # After the cards: a failing watch message must not hold a card back; a reply threads under its card.
            await self.short_notices.send(self.notifier, self.store.db, self.config.telegram.allowed_ids, self.paused, self.card_copies)
            if self.config.telegram.cards.followups:
                for signal_id in self.cards.cards.pending_followups():
                    if self._stop.is_set():
                        return 0.0
                    await self.cards.follow_up(signal_id)
                    self.stats_dirty = True
            if self.config.telegram.cards.listings and self.cards.targets():
                await send_listings(self.cards)
            await self.daily.update(self.stats_dirty, self.cards.targets())
            await self._periodic_top()
            self.stats_dirty = False
        except RetryAfter as exc:
            return max(retry_after_s(exc), 0.1)
        except NetworkError as exc:  # includes TimedOut; BadRequest is handled per chat
            log.warning("telegram send failed, will retry", extra={"error": type(exc).__name__})
            return -1.0
        except TelegramError:
            return -1.0
        return 0.0

    async def _periodic_top(self) -> None:
        """telegram.cards.top_interval_s > 0: post /top 1h to every target chat that often."""
        interval = self.config.telegram.cards.top_interval_s
        now = time.monotonic()
        if interval <= 0 or now < self._next_top:
            return
        self._next_top = now + interval
        text = await commands.answer(self, "top", [])
        for chat in self.cards.targets():
            try:
                await self.notifier.send_text(chat, text[:MAX_TEXT])
            except (BadRequest, Forbidden) as exc:
                log.warning("telegram refused the periodic /top", extra={"chat_id": chat, "error": str(exc)[:200]})

    async def _send_loop(self) -> None:
        """Crash-only outbox: whatever the Store says is unsent is sent, retried until it is."""
        backoff = 1.0
        while not self._stop.is_set():
            self._send_event.clear()
            wait = await self._send_pending()
            if wait < 0:  # network trouble: exponential backoff
                wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF_S)
            elif wait == 0:
                backoff = 1.0
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), wait)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_event.wait(), 5.0)

    # --- handlers -----------------------------------------------------------------------------------------

    async def _reply(self, update: Update, text: str) -> None:
        message = update.effective_message
        if message is None:
            return
        for start in range(0, max(len(text), 1), MAX_TEXT):
            await self.notifier.send_text(message.chat_id, text[start:start + MAX_TEXT] or "(empty)", urgent=True)

    async def _command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not is_allowed(update, self.config.telegram.allowed_ids):
            return
        message = update.effective_message
        if message is None or not message.text:
            return
        parts = message.text.split()
        name = parts[0][1:].split("@")[0].lower()
        if name in positions.NAMES:  # bot/positions.py: /positions, /pnl, /sell, /portfolio
            reply = await positions.answer(self, update, name, parts[1:])
            if reply is not None:
                await self._reply(update, reply)
            return
        text = await commands.answer(self, name, parts[1:], message.chat_id)
        await self._reply(update, text + ("\n" + positions.HELP if name in ("help", "start") else ""))

    async def _other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is not None and message.chat_id < 0:  # people talk in a group (telegram.chat_ids): only commands get answers
            return
        if not is_allowed(update, self.config.telegram.allowed_ids):
            return
        await self._reply(update, "Unknown command. /help lists them.")

    async def _callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or not is_allowed(update, self.config.telegram.allowed_ids):
            return
        action, _, signal_id = (query.data or "").partition(":")
        if action in positions.ACTIONS and (action != "sell" or is_valid_signal_id(signal_id)):
            await positions.on_callback(self, update, action, signal_id)  # Sell, its confirmation (bot/positions.py)
            return
        if action not in ("buy", "skip") or not is_valid_signal_id(signal_id):
            await query.answer("Unknown button.")
            return
        sig = self.store.get_signal(signal_id)
        if sig is None:
            await query.answer("This signal is not known any more.")
            return
        user = update.effective_user
        assert user is not None  # is_allowed checked it
        if not self.store.record_action(signal_id, user.id, action, time.time_ns()):
            previous = self.store.get_action(signal_id)
            await query.answer(f"Already decided: {previous[0] if previous else '?'}.")
            return
        buttons = None
        if action == "skip":
            await query.answer("Ignored")
            line = f"⏭ Skipped by {user.id}"
        else:
            try:
                result = await self.trader.buy(sig, user.id)
                ok, message, mode, order = result.ok, result.message, result.mode, result.order
            except Exception as exc:  # noqa: BLE001 - the user must get an answer whatever failed
                log.exception("buy failed unexpectedly", extra={"signal_id": signal_id})
                ok, message, mode, order = False, f"Buy failed: internal error ({type(exc).__name__}); no order confirmed.", "?", None
            await query.answer(message[:190], show_alert=not ok)
            line = f"🛒 Buy by {user.id} ({mode}): {message}" if ok else f"❌ Buy by {user.id} failed ({mode}): {message}"
            fill = fill_text(sig.price, order.price, order.mode) if ok and order is not None else None
            if fill is not None:  # the price paid and its slippage vs the card's price, paper fills too
                line += "\n" + fill
            filled = positions.fill_line(order.qty, order.price, getattr(result, "fee", 0.0), approx=getattr(result, "fee_approx", False)) if ok and order is not None else None
            if filled is not None:  # a Buy that filled: its quantity and fee, and a Sell button (bot/positions.py)
                line, buttons = line + "\n" + filled, positions.sell_markup(signal_id)
        pressed = query.message
        where = (pressed.chat.id, pressed.message_id, "photo" if getattr(pressed, "photo", None) else "text") if pressed else None
        await self._mark_decided(sig, where, line, buttons)

    async def _mark_decided(self, sig: Signal, pressed: tuple[int, int, str] | None, line: str, buttons: Any = None) -> None:
        """Edit every copy of the card (bot/sender.py) and the pressed one: who decided what, buttons removed
        (but a Sell button once a Buy filled)."""
        await self.cards.edit_all(sig, escape(line), keep_buttons=False, extra_copy=pressed, urgent=True, buttons=buttons)

    # --- run ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until Stop, SIGTERM/SIGINT, or the pipe closing."""
        loop = asyncio.get_running_loop()
        self.pipe.attach(loop, self._stop.set)
        sender: asyncio.Task[None] | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            if await start_application(self.app, self._stop):
                sender = loop.create_task(self._send_loop())
                watcher = loop.create_task(positions.watch(self, self._stop))  # exits in doubt, automatic exits, daily summary
                await self._stop.wait()
        finally:
            if sender is not None:  # let the card in flight be recorded, or the next start sends it again
                self._send_event.set()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(sender), STOP_GRACE_S)
            for task in (sender, watcher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.pipe.detach(loop)
            await stop_application(self.app)
            with contextlib.suppress(Exception):
                await self.trader.close()
            await self.cards.close()
            self.store.close()

    def stop(self) -> None:
        self._stop.set()


def run_bot(config: Config, conn: Connection) -> None:
    """Process entry point (started by the supervisor); blocks until told to stop."""
    reset_child_signals()
    setup_logging(config.logging.level, "bot", config.secrets(), config.storage.data_dir, config.logging)
    with contextlib.suppress(ValueError):
        signals.signal(signals.SIGHUP, signals.SIG_IGN)

    async def main() -> None:
        await Bot(config, conn).run()

    asyncio.run(main())
