"""A rule a row passed, printed so that the printed comparison is itself true.

Why: "VC 0.50<0.5" for a true 0.4996 reads as a false statement on the card. Every detector's
reasons go through rule_text, so a trader can check each line by eye.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal

# Why a Decimal search instead of a fixed format: the value gets as many digits as it takes for
# the printed comparison to hold, and usually no more than the readable default.
_OPS: dict[str, Callable[[Decimal, Decimal], bool]] = {">": operator.gt, "<": operator.lt, "≥": operator.ge}
_EXACT = Context(prec=1000, Emax=100_000, Emin=-100_000)  # wide enough that every float's decimal scales exactly
_MAX_EXTRA_DIGITS = 20


def _decimal(value: float, scale: Decimal, per: int = 1) -> Decimal:
    """The shortest decimal that reads back as value (repr), times scale, divided by per (a unit: 3600 s per h).

    Why repr and not the float's exact binary value: repr is strictly monotonic (a > b implies
    repr(a) > repr(b), and equal floats give equal text), so the rule's float comparison carries
    over to the printed decimals, including >= at equality (0.7's exact value is below "0.7").
    """
    d = _EXACT.multiply(Decimal(repr(float(value))), scale)
    if per != 1:  # 1,000 digits: a non-terminating quotient still keeps every float's order
        d = _EXACT.divide(d, Decimal(per))
    return d.copy_abs() if d.is_zero() else d  # no "-0"


def _readable(d: Decimal) -> bool:
    """Fixed-point reads well from 1e-8 to 1e15; beyond that (a broken baseline's VSR 1e300) use an exponent."""
    return d.is_zero() or -8 <= d.adjusted() < 15


def _plain(d: Decimal) -> str:
    """Shortest text of d: "2", "0.015", "100" (not "1E+2"), "1E+300"."""
    if not _readable(d):
        return format(d.normalize(_EXACT), "E")
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _shown(v: Decimal, places: int | None, rounding: str = ROUND_HALF_EVEN) -> Iterator[str]:
    """Texts of v from the readable default to more digits; the last one is v itself (always true)."""
    if _readable(v):
        if places is None:  # 4 significant digits, but never rounding the integer part: 12346, 3.000, 0.0001234
            places = max(0, 3 - (v.adjusted() if not v.is_zero() else 0))
        for d in range(places, places + _MAX_EXTRA_DIGITS + 1):
            yield format(v.quantize(Decimal(1).scaleb(-d), rounding=rounding, context=_EXACT), "f")
    else:
        for k in range(4, 4 + _MAX_EXTRA_DIGITS + 1):
            yield format(Context(prec=k, rounding=rounding, Emax=100_000, Emin=-100_000).plus(v), "E")
    yield _plain(v)


def rule_text(label: str, value: float, op: str, threshold: float, *, places: int | None = 2,
              scale: Decimal = Decimal(1), per: int = 1, unit: str = "", rounding: str = ROUND_HALF_EVEN) -> str:  # fmt: skip
    """"label value op threshold" for a rule the value passed, e.g. "VC 0.4996 < 0.5".

    The threshold is printed as configured (shortest decimal, times scale, divided by per); the
    value with the fewest decimals (at least `places` and the threshold's; None: 4 significant
    digits) for which the
    printed value compared with the printed threshold satisfies op. A value that does not pass
    (never the case for a fired rule) ends at its full decimal, still printed, never hidden.
    """
    compare = _OPS[op]
    t_text = _plain(_decimal(threshold, scale, per))
    if not math.isfinite(value):
        v_text = "n/a" if value != value else ("inf" if value > 0 else "-inf")
        return f"{label} {v_text}{unit} {op} {t_text}{unit}"
    t = Decimal(t_text)
    if places is not None and "E" not in t_text:  # at least the threshold's decimals: "0.2501 h > 0.25 h", not "0.3 h > 0.25 h"
        places = max(places, -min(0, t.as_tuple().exponent))  # type: ignore[operator]
    text = ""
    for text in _shown(_decimal(value, scale, per), places, rounding):
        if compare(Decimal(text), t):
            break
    return f"{label} {text}{unit} {op} {t_text}{unit}"


def age_unit(threshold_s: float) -> tuple[str, int]:
    """Hours, else minutes, else seconds: the first unit in which the threshold reads exactly, in at most 2 decimals (900 s -> 0.25 h).

    Why: a rounded threshold ("0.28 h" for 1,000 s) would make the printed comparison a different claim than the rule.
    """
    t = Decimal(repr(float(threshold_s)))
    for unit, per in ((" h", 3600), (" min", 60)):
        q = _EXACT.divide(t, Decimal(per))
        if q == _EXACT.quantize(q, Decimal("0.01")):
            return unit, per
    return " s", 1


def prob_text(trained: bool, prob: float, threshold: float) -> str:
    """The model's line, e.g. "Score 0.99 ≥ 0.6": rounded down, like the card's headline (bot/cards.py).

    Why down: a 0.997 read as "1.00" looks certain; truncated digits still make a true comparison
    (the threshold's own decimals are kept, and more are added while needed).
    """
    return rule_text(prob_label(trained), prob, "≥", threshold, rounding=ROUND_DOWN)


def prob_label(trained: bool) -> str:
    """What to call the model's output: a probability only when the model was fitted to data.

    Why: a hand-set model (model.json's `trained` is null) maps a weighted score through a
    sigmoid; its 0.99 was never calibrated against outcomes, so calling it a probability misleads.
    """
    return "Pump prob" if trained else "Score"
