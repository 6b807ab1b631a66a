"""python-telegram-bot Application wiring, started and stopped by hand.

Why not run_polling: the bot shares its event loop with the supervisor pipe and the card sender,
and run_polling owns the loop and signal handlers. Why a retry loop around start: if Telegram is
unreachable when the process starts, the process must keep running (cards wait in the Store)
and connect as soon as Telegram is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import BotCommand
from telegram.error import InvalidToken, NetworkError, TimedOut
from telegram.ext import Application

from common.config import Config
from common.logs import EXIT_CONFIG

log = logging.getLogger("scanner.bot.app")

COMMANDS: list[tuple[str, str]] = [
    ("status", "processes, links, frames/s, latency"),
    ("stats", "signals, buys, skips; hit rate, TP/SL/TIMEOUT"),
    ("cfg", "show config; /cfg key value changes it; /cfg save keeps changes"),
    ("reload", "re-read config.yaml"),
    ("pause", "stop sending cards (signals still stored)"),
    ("resume", "send cards again"),
    ("top", "[5m|1h|24h] [n]: biggest movers"),
    ("mute", "SYMBOL [hours]: no cards for a pair in this chat"),
    ("unmute", "SYMBOL: cards for the pair again"),
    ("mutes", "pairs muted in this chat"),
    ("health", "one-line health check"),
    ("version", "program version"),
    ("help", "list commands"),
]
POLL_TIMEOUT_S = 10


def build_application(config: Config) -> Application:
    """An Application talking to config.telegram.base_url; flood control is bot/notifier.py's (one scheduler for every message)."""
    timeout = config.telegram.send_timeout_s
    return (
        Application.builder()
        .token(config.telegram.token)
        .base_url(config.telegram.base_url)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .pool_timeout(timeout)
        .get_updates_read_timeout(timeout)  # PTB adds the long-poll timeout itself
        .build()
    )


async def start_application(app: Application, stop: asyncio.Event, poll_timeout_s: int = POLL_TIMEOUT_S) -> bool:
    """initialize/start/start_polling with backoff while Telegram is unreachable.

    Returns True once polling, False if stop was set first.
    """
    delay = 1.0
    while not stop.is_set():
        try:
            await app.initialize()
            if not app.running:
                await app.start()
            assert app.updater is not None
            if not app.updater.running:
                await app.updater.start_polling(poll_interval=0.0, timeout=poll_timeout_s, drop_pending_updates=False)
            with contextlib.suppress(NetworkError, TimedOut):
                await app.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
            return True
        except InvalidToken:
            # Fatal for this process: retrying cannot fix a token. Its message quotes the token, so
            # it is neither logged nor chained; the supervisor restarts the bot with a backoff.
            log.critical("the Telegram Bot API rejected the bot token (TG_TOKEN): check it with @BotFather, then restart",
                         extra={"base_url_host": _host(app)})  # fmt: skip
            raise SystemExit(EXIT_CONFIG) from None
        except (NetworkError, TimedOut) as exc:
            log.warning("telegram unreachable, retrying", extra={"error": type(exc).__name__, "retry_in_s": delay})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 30.0)
    return False


def _host(app: Application) -> str:
    """The Bot API host (never the path: the token is in it)."""
    from urllib.parse import urlsplit

    return urlsplit(str(app.bot.base_url)).netloc


async def stop_application(app: Application) -> None:
    """Stop polling and shut down; errors here must not keep the process from exiting."""
    for step in ("updater", "app", "shutdown"):
        try:
            if step == "updater" and app.updater is not None and app.updater.running:
                await app.updater.stop()
            elif step == "app" and app.running:
                await app.stop()
            elif step == "shutdown":
                await app.shutdown()
        except Exception as exc:  # noqa: BLE001 - shutting down regardless
            log.warning("telegram shutdown step failed", extra={"step": step, "error": type(exc).__name__})
