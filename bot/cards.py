"""Signal cards in Telegram MarkdownV2 and their Buy / Skip buttons.

Every dynamic value goes through escape(): symbols, numbers ('.' and '-' are reserved in
MarkdownV2) and reasons. Inside a code span only ` and \\ need escaping.
"""

from __future__ import annotations

import math
import time

from common.signal import Signal

_RESERVED = "_*[]()~`>#+-=|{}.!\\"


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


def card_text(signal: Signal, now_ns: int | None = None) -> str:
    """The card: headline, price and time, age, profile and reasons."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    f = signal.features
    if signal.profile == "flash":  # trade-derived: rush orders and the 25 s move, no book
        key = f"Rush x{_num(f.get('rush_ratio_25s', math.nan), '.1f')}  25s {_num(f.get('ret_25s', math.nan) * 100, '+.2f')}%"
    else:
        key = f"VSR {_num(f.get('vsr', math.nan), '.1f')}  PM {_num(f.get('pm', math.nan) * 100, '.2f')}%"
    headline = f"🚀 *{escape(signal.symbol)}* — {escape(key)}  Prob {escape(f'{signal.prob:.2f}')}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(signal.exchange_time_ms / 1000))
    age_s = max(0.0, (now_ns - signal.recv_ns) / 1e9)
    lines = [
        headline,
        f"Price: `{escape_code(format_price(signal.price))}` ⏱ {escape(when)} UTC",
        escape(f"Age: {age_s:.1f} s · profile {signal.profile}" + (f" · 🔺 re-alert #{signal.escalation}" if signal.escalation else "")),
    ]
    if signal.reasons:
        lines.append(escape("Reasons: " + ", ".join(signal.reasons)))
    return "\n".join(lines)


def keyboard(signal_id: str, stake_usd: float) -> dict:
    """Inline keyboard as Bot API JSON (callback_data stays far below 64 bytes)."""
    return {"inline_keyboard": [[
        {"text": f"Buy ${stake_usd:g}", "callback_data": f"buy:{signal_id}"},
        {"text": "Skip", "callback_data": f"skip:{signal_id}"},
    ]]}  # fmt: skip


def decided_text(original: str, line: str) -> str:
    """The card after a decision: the original text plus who decided what."""
    return original + "\n" + escape(line)
