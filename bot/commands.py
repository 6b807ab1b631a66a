"""Slash commands: what each one answers, as plain text (no parse mode, nothing to escape).

Why a separate module: the answers are pure functions of the bot's state and the supervisor's
replies, so they are tested without Telegram; process.py only routes updates here.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol

from bot.arb_text import format_arb
from bot.model_text import format_models
from common.config import Config
from common.messages import CfgSave, CfgSet, Reload, StatusRequest, TopRequest

VERSION = "0.1.0"
NO_ANSWER = "The supervisor did not answer within {s:g} s; nothing changed. Try again shortly."
HELP = (
    "MEXC pump scanner. Commands:\n"
    "/status — processes (CPU, RSS/PSS, uptime), links, streams, frames/s, reconnects, latency p95, pairs\n"
    "/stats — signals, buys, skips, orders over 24 h; hit rate and TP/SL/TIMEOUT over 24 h, 7 d, all\n"
    "/cfg or /show_config — live config (secrets masked); /cfg section.key — one value; /cfg section.key value — change it "
    "until the next reload; /cfg save — keep the changes\n"
    "/reload — re-read config.yaml\n"
    "/model — the running model of each profile: when trained, validation figures\n"
    "/pause, /resume — stop / restart cards (signals are still stored while paused)\n"
    "/top [5m|15m|30m|1h|24h] [n] — biggest gainers, losers and volume surges from the scanner's own data\n"
    "/mute SYMBOL [hours] — no cards for that pair in this chat (default 24 h); /unmute SYMBOL; /mutes — what is muted\n"
    "/arb — triangular arbitrage: best cycles now, opportunities of the last 24 h\n"
    "/health, /version, /help"
)


class BotState(Protocol):
    """What the commands need from the running bot."""

    config: Config
    paused: bool
    request_timeout_s: float

    async def ask_supervisor(self, kind: type[Any], **fields: Any) -> Any: ...

    def stats(self, since_ns: int) -> dict[str, Any]: ...

    def outcome_stats(self, since_ns: int) -> dict[str, Any]: ...

    def unsent_count(self) -> int: ...

    @property
    def cards(self) -> Any: ...  # bot/sender.py's CardSender (its .cards is the CardStore)


def _num(value: Any, fmt: str, default: str = "n/a") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return format(value, fmt)


def _mb(value: Any) -> str:
    return _num(value / 2**20, ".0f") + " MB" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _uptime(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
        return "n/a"
    s = int(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    return (f"{days}d " if days else "") + f"{hours}h {rest // 60:02d}m"


def format_status(status: dict[str, Any]) -> str:
    """The /status answer; missing or odd fields show as n/a rather than failing."""
    lines = []
    for p in status.get("processes") or []:
        if not isinstance(p, dict):
            continue
        lines.append(
            f"{p.get('name', '?')} (pid {p.get('pid', '?')}): CPU {_num(p.get('cpu_percent'), '.1f')}%  "
            f"RSS {_mb(p.get('rss_bytes'))}  PSS {_mb(p.get('pss_bytes'))}  up {_uptime(p.get('uptime_s'))}"
        )
    p95 = status.get("latency_p95_ms")
    lines.append(f"links {_num(status.get('links'), 'd', '?')}, streams {_num(status.get('streams'), 'd', '?')}, "
                 f"{_num(status.get('frames_per_s'), '.0f')} frames/s, reconnects {_num(status.get('reconnects'), 'd', '?')}")  # fmt: skip
    lines.append(f"latency p95 {'n/a' if p95 is None else _num(p95, '.1f') + ' ms'}, pairs {_num(status.get('pairs_watched'), 'd', '?')}, "
                 f"signals last hour {_num(status.get('signals_last_hour'), 'd', '?')}")  # fmt: skip
    futures = status.get("futures")
    if isinstance(futures, dict):
        lines.append(f"futures: {'link up' if futures.get('link_up') else 'NO LINK'}, {_num(futures.get('contracts'), 'd', '?')} contracts, "
                     f"episodes {_num(futures.get('episodes_stored'), 'd', '?')} stored, {_num(futures.get('episodes_open'), 'd', '?')} open")  # fmt: skip
    lines.extend(f"⚠️ {w}" for w in status.get("warnings") or [] if isinstance(w, str))
    return "\n".join(lines)


def format_health(status: dict[str, Any], unsent: int, paused: bool) -> str:
    """One line: is everything there, and are cards flowing."""
    procs = [p for p in status.get("processes") or [] if isinstance(p, dict)]
    links = status.get("links") or 0
    verdict = "OK" if status.get("healthy", bool(procs and links)) else "DEGRADED"
    return (f"{verdict}: {len(procs)} processes, {links} links, {status.get('pairs_watched', 0)} pairs; "
            f"cards {'paused' if paused else 'active'}, {unsent} waiting to be sent.")  # fmt: skip


def format_config(public: dict[str, dict[str, Any]]) -> str:
    """One `section.key = value` line per setting (secrets already masked by the caller)."""
    def show(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    return "\n".join(f"{section}.{key} = {show(value)}" for section, keys in public.items() for key, value in keys.items())


CFG_USAGE = ("Usage: /cfg — every setting; /cfg section.key — one setting; /cfg section.key value — change it until the next "
             "/reload or restart; /cfg save — keep this run's changes (e.g. /cfg detectors.pump.profiles.alpha1.vsr_min 6)")


def show_value(public: dict[str, dict[str, Any]], dotted_key: str) -> str:
    """`/cfg key`: the key's current value, or what keys exist."""
    section, _, key = dotted_key.partition(".")
    if section not in public:
        return f"{dotted_key}: unknown key (sections: {', '.join(sorted(public))})\n{CFG_USAGE}"
    if key not in public[section]:
        return f"{dotted_key}: unknown key (known keys: {', '.join(public[section])})"
    return format_config({section: {key: public[section][key]}})


def format_stats(s: dict[str, Any]) -> str:
    budget = s.get("suppressed_budget", 0)
    held = (f"\nNo card for {s.get('suppressed', 0)} of them; {budget} held back by the card budget (strongest prob "
            f"{_num(s.get('suppressed_budget_top_prob'), '.3f')}; scanner.max_cards_per_hour / max_cards_per_day)."
            if budget else "")  # fmt: skip
    return (f"Last 24 h: {s.get('signals', 0)} signals ({_num(s.get('signals_per_hour', 0.0), '.2f')}/h), "
            f"{s.get('buys', 0)} buys, {s.get('skips', 0)} skips, {s.get('paper_orders', 0)} paper and "
            f"{s.get('live_orders', 0)} live orders." + held)  # fmt: skip


OUTCOME_WINDOWS = (("24 h", 24 * 3600), ("7 d", 7 * 86400), ("all", None))


def format_outcomes(windows: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per window: hit rate over decided watches, then the trade labels."""
    lines = []
    for name, s in windows:
        rate = s.get("hit_rate")
        shown = "n/a" if rate is None else _num(100.0 * rate, ".0f") + " %"
        unknown = f", {s.get('unknown', 0)} unknown" if s.get("unknown") else ""
        lines.append(f"Outcomes {name}: hit rate {shown} ({s.get('hit', 0)} hit / {s.get('miss', 0)} miss{unknown}); "
                     f"TP {s.get('TP', 0)}, SL {s.get('SL', 0)}, TIMEOUT {s.get('TIMEOUT', 0)}")  # fmt: skip
    return "\n".join(lines)


async def answer(bot: BotState, name: str, args: list[str], chat_id: int = 0) -> str:
    """The reply text for /name args (name without slash, lower case) typed in chat_id."""
    if name in ("mute", "unmute", "mutes"):
        from bot import mutes

        return mutes.answer(bot.cards.cards, chat_id, name, args)
    no_answer = NO_ANSWER.format(s=bot.request_timeout_s)
    if name == "top":
        from bot import top

        parsed = top.parse(args)
        if isinstance(parsed, str):
            return parsed
        reply = await bot.ask_supervisor(TopRequest, window_s=parsed[0], n=parsed[1])
        return no_answer.replace("; nothing changed", "") if reply is None else top.format_top(reply.status)
    if name in ("start", "help"):
        return HELP
    if name == "version":
        return f"mexc-pump-scanner {VERSION}"
    if name == "pause":
        bot.paused = True
        return "Alerts paused: signals are still stored (marked suppressed), no cards are sent. /resume to continue."
    if name == "resume":
        bot.paused = False
        return "Alerts resumed: new signals are sent as cards again."
    if name == "stats":
        now = time.time_ns()
        windows = [(name, bot.outcome_stats(0 if span is None else now - span * 10**9)) for name, span in OUTCOME_WINDOWS]
        return format_stats(bot.stats(now - 24 * 3600 * 10**9)) + "\n" + format_outcomes(windows)
    if name == "model":
        reply = await bot.ask_supervisor(StatusRequest)
        if reply is None:
            return no_answer.replace("; nothing changed", "")
        return format_models(reply.status.get("models"), reply.status.get("selftrain_last"))
    if name in ("status", "health", "arb"):
        reply = await bot.ask_supervisor(StatusRequest)
        if reply is None:
            return no_answer.replace("; nothing changed", "")
        status = reply.status
        if name == "arb":
            return format_arb(status.get("arb"))
        return format_status(status) if name == "status" else format_health(status, bot.unsent_count(), bot.paused)
    if name == "reload":
        reply = await bot.ask_supervisor(Reload)
        if reply is None:
            return no_answer
        return ("Reloaded: " if reply.ok else "Reload refused, nothing changed: ") + reply.message
    if name == "show_config":
        return format_config(bot.config.to_public_dict())
    if name == "cfg":
        if not args:
            return format_config(bot.config.to_public_dict())
        if args == ["save"]:
            reply = await bot.ask_supervisor(CfgSave)
            if reply is None:
                return no_answer
            return ("Saved: " if reply.ok else "Not saved: ") + reply.message
        if len(args) == 1:
            return show_value(bot.config.to_public_dict(), args[0])
        if len(args) != 2:
            return CFG_USAGE
        reply = await bot.ask_supervisor(CfgSet, key=args[0], value=args[1])
        if reply is None:
            return no_answer
        return ("Changed: " if reply.ok else "Refused, nothing changed: ") + reply.message
    return "Unknown command. /help lists them."


NAMES = ("start", "help", "status", "stats", "cfg", "show_config", "reload", "pause", "resume", "health", "version", "model", "mute",
         "unmute", "mutes", "top", "arb")  # fmt: skip
