"""Signal cards in Telegram MarkdownV2 and their Buy / Skip buttons.

Every dynamic value goes through escape(): symbols, numbers ('.' and '-' are reserved in
MarkdownV2) and reasons. Inside a code span only ` and \\ need escaping.
"""

from __future__ import annotations

import math
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import quote as quote_url

from common.signal import Signal
from store.cards import TrackRecord

_RESERVED = "_*[]()~`>#+-=|{}.!\\"
# Quote assets of MEXC spot pairs for the exchange link; none ends another, so the first match is the quote.
QUOTE_ASSETS = ("USDT", "USDC", "USDE", "USD1", "BTC", "ETH", "EUR", "BRL", "TRY")


def escape(text: str) -> str:
    """Escape every MarkdownV2 reserved character."""
    return "".join("\\" + c if c in _RESERVED else c for c in text)


def escape_code(text: str) -> str:
    """Escape text for inside a `code` span, where only ` and \\ are special."""
    return text.replace("\\", "\\\\").replace("`", "\\`")


def format_price(price: float) -> str:
    """Enough significant digits for micro-priced coins, no exponent notation."""
    if not math.isfinite(price):
        return "n/a"
    if price == 0:
        return "0"
    digits = max(2, 6 - int(math.floor(math.log10(abs(price)))))
    return f"{price:.{min(digits, 12)}f}".rstrip("0").rstrip(".")


def _num(value: float, fmt: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, fmt)


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value * 100:+.2f}%"


def format_usd(value: float | None) -> str:
    """Compact dollars for volumes: $850k, $1.23M, $4.5B."""
    if value is None or not math.isfinite(value) or value < 0:
        return "n/a"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"${value / size:.3g}{unit}"
    return f"${value:.0f}"


def format_duration(seconds: float) -> str:
    """0.4 s, 12.0 s, 5.2 min, 1.5 h: a resent card hours late must say so plainly."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _floor2(value: float) -> str:
    """Two decimals rounded down, so a 0.999 score never reads as a certain 1.00."""
    if not math.isfinite(value):
        return "n/a"
    if abs(value) >= 1e6:  # not a probability or a score any model of ours gives; keep it short
        return f"{value:.3g}"
    return str(Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_DOWN))


def exchange_url(symbol: str) -> str | None:
    """The pair's MEXC spot page (https://www.mexc.com/exchange/BASE_QUOTE); None when no known quote asset ends the symbol.

    Only text on the card: nothing here fetches it (and the bot sends cards with link previews off).
    """
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"https://www.mexc.com/exchange/{quote_url(symbol[: -len(quote)], safe='')}_{quote}"
    return None


def card_text(signal: Signal, now_ns: int | None = None, extra: tuple[str, ...] | list[str] = ()) -> str:
    """The card: headline, price and time, recent moves, latency and profile, reasons, the pair's page.

    extra: plain lines (track record, queue) shown under the latency line, escaped here.
    now_ns is the send time (the card's own latency is fixed when it is sent; an edit after a
    decision passes the stored send time, so the number never changes under the reader).
    Why "Score" and not "Prob": a hand-set model's output was never calibrated; only a model
    whose file records its training is called a probability.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    f = signal.features
    if signal.profile == "flash":  # trade-derived: rush orders and the 25 s move, no book
        key = f"Rush x{_num(f.get('rush_ratio_25s', math.nan), '.1f')}  25s {_num(f.get('ret_25s', math.nan) * 100, '+.2f')}%"
    else:
        key = f"VSR {_num(f.get('vsr', math.nan), '.1f')}  PM {_num(f.get('pm', math.nan) * 100, '.2f')}%"
    label = "Pump prob" if signal.model_trained else "Score"
    headline = f"🚀 *{escape(signal.symbol)}* — {escape(key)}  {label} {escape(_floor2(signal.prob))}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(signal.exchange_time_ms / 1000))
    latency_s = max(0.0, (now_ns - signal.recv_ns) / 1e9)
    about = f"Sent {format_duration(latency_s)} after the market data that fired it · profile {signal.profile}"
    if not signal.model_trained:
        about += " · score from hand-set weights, not a measured probability"
    if signal.escalation:
        about += f" · 🔺 re-alert #{signal.escalation}"
    lines = [headline, f"Price: `{escape_code(format_price(signal.price))}` ⏱ {escape(when)} UTC"]
    context = (signal.change_1m, signal.change_5m, signal.change_15m, signal.quote_volume_24h)
    if any(v is not None for v in context):  # a signal stored before these existed has none: no line of n/a
        lines.append(escape(f"Change: 1m {_pct(signal.change_1m)} · 5m {_pct(signal.change_5m)} · 15m {_pct(signal.change_15m)}"
                            f" · 24h volume {format_usd(signal.quote_volume_24h)}"))  # fmt: skip
    lines.append(escape(about))
    lines.extend(escape(line) for line in extra)
    if signal.reasons:
        lines.append(escape("Why:"))
        lines.extend(escape(f"• {r}") for r in signal.reasons)
    url = exchange_url(signal.symbol)
    if url is not None:
        lines.append(escape(f"On MEXC: {url}"))
    return "\n".join(lines)


def fill_text(signal_price: float, fill_price: float | None, mode: str) -> str | None:
    """The Buy's fill and its slippage against the signal price, for the decided card; None without a fill price.

    Why on the card: a paper fill at the ask 0.9 % above the signal price is a cost the trader
    should see next to the signal, not discover in the order table.
    """
    if fill_price is None or not math.isfinite(fill_price) or fill_price <= 0:
        return None
    kind = "Paper fill" if mode == "paper" else "Filled"
    if not math.isfinite(signal_price) or signal_price <= 0:
        return f"{kind} at {format_price(fill_price)}"
    slippage = fill_price / signal_price - 1
    return f"{kind} at {format_price(fill_price)}: {slippage * 100:+.2f}% vs the signal price {format_price(signal_price)} (slippage)"


def keyboard(signal_id: str, stake_usd: float) -> dict:
    """Inline keyboard as Bot API JSON (callback_data stays far below 64 bytes)."""
    return {"inline_keyboard": [[
        {"text": f"Buy ${stake_usd:g}", "callback_data": f"buy:{signal_id}"},
        {"text": "Skip", "callback_data": f"skip:{signal_id}"},
    ]]}  # fmt: skip


def decided_text(original: str, line: str) -> str:
    """The card after a decision: the original text plus who decided what."""
    return original + "\n" + escape(line)


def track_record_line(symbol: str, profile: str, record: TrackRecord, min_sample: int, hit_gain: float) -> str | None:
    """"Record on PEPEUSDT: 6 signals in 30 d, 2 reached +10%, median max +4.1% · alpha1 7 d hit rate 31% (13)".

    None below min_sample decided signals: two signals make no record, and a card must not suggest one.
    """
    if record.signals < min_sample:
        return None
    median = "n/a" if record.median_max_gain is None else f"{record.median_max_gain * 100:+.1f}%"
    line = f"📊 Record on {symbol}: {record.signals} signals in 30 d, {record.hits} reached +{hit_gain * 100:g}%, median max {median}"
    if record.profile_decided:
        line += f" · {profile} 7 d hit rate {100 * record.profile_hits / record.profile_decided:.0f}% ({record.profile_decided})"
    return line


def followup_line(outcome: dict[str, Any]) -> str:
    """The outcome under the card: "📈 Outcome: hit · max +14.2% after 3.5 min · TP" (plain text, escaped by the caller)."""
    gain, to_max = outcome.get("max_gain"), outcome.get("time_to_max_s")
    icon = {"hit": "📈", "miss": "📉"}.get(str(outcome.get("outcome")), "❔")
    parts = [f"{icon} Outcome: {outcome.get('outcome', '?')}"]
    if isinstance(gain, (int, float)) and math.isfinite(gain):
        parts.append(f"max {gain * 100:+.1f}%" + (f" after {format_duration(float(to_max))}" if isinstance(to_max, (int, float)) else ""))
    drawdown = outcome.get("max_drawdown")
    if isinstance(drawdown, (int, float)) and math.isfinite(drawdown):
        parts.append(f"worst {drawdown * 100:+.1f}%")
    if outcome.get("trade"):
        parts.append(str(outcome["trade"]))
    if outcome.get("reason"):
        parts.append(str(outcome["reason"])[:80])
    return " · ".join(parts)


def queued_line(behind: int) -> str | None:
    """A burst says so: how many cards wait behind this one for Telegram's rate limits."""
    return None if behind <= 0 else f"📬 {behind} more card{'s' if behind != 1 else ''} queued behind this one (Telegram rate limits)"
