"""The chart on a card: an 800x450 PNG of the pair's last 30 minutes, drawn with Pillow.

What it shows: 1-minute candles (the price), the 5-min VWAP as a line, the 5-min quote volume as
bars beneath, the signal's moment (a dashed line) and price (a ring and a label), a UTC time axis.
The data is the supervisor's (supervisor/chart_history.py, stored with the signal), so the chart
belongs to the signal it is attached to: it is keyed by the signal id, never looked up by symbol.

Why Pillow and not matplotlib: a card needs lines, rectangles and a few labels. Pillow does that
in ~10-20 ms and costs a few MB in the bot process; matplotlib costs tens of MB of imports and a
figure pipeline for the same picture (perf/bench_chart.py measures both figures for Pillow).
Pillow is imported on the first chart only, so a bot with charts off never pays for it.

render_png raises ChartError for data it cannot draw; any other exception is a bug in the
drawing library or here, and the caller sends the card as text either way.

Why in_child (a forked child per chart): Pillow's import, its first-use caches and the heap a render
leaves behind cost the bot ~7 MB for as long as it runs (perf/bench_chart.py), which the service's
150 MB budget at 2,000 pairs does not have. A child forked for one chart pays them and exits: the
bot keeps its size, the chart costs ~50-100 ms more (fork, import), far inside the card's wait bound.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from typing import Any

WIDTH, HEIGHT = 800, 450
LEFT, RIGHT, TOP = 10, 92, 30  # plot margins: the price axis is on the right
PRICE_BOTTOM, VOLUME_TOP, VOLUME_BOTTOM = 330, 345, 420
BG, GRID, TEXT = (19, 23, 34), (42, 46, 57), (200, 204, 214)
UP, DOWN, VWAP, SIGNAL, VOLUME = (38, 166, 154), (239, 83, 80), (255, 183, 77), (66, 165, 245), (90, 98, 120)
MINUTE_MS = 60_000
_FONTS: list[Any] = []  # (label font, title font), loaded by the first chart


class ChartError(ValueError):
    """The series cannot make a chart (too few candles, no prices)."""


def _fmt_price(price: float) -> str:
    if price <= 0 or not math.isfinite(price):
        return "n/a"
    digits = max(2, 3 - int(math.floor(math.log10(abs(price)))))
    return f"{price:.{min(digits, 12)}f}".rstrip("0").rstrip(".")


def _fmt_volume(value: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"${value / size:.3g}{unit}"
    return f"${value:.0f}"


def _candles(series: dict[str, Any]) -> list[tuple[int, float, float, float, float, float | None, float | None]]:
    """(t, o, h, l, c, vwap, qv5) rows with a usable price, oldest first."""
    out = []
    try:
        columns = [series[k] for k in ("t", "o", "h", "l", "c", "vwap", "qv5")]
        for t, o, h, lo, c, vwap, qv5 in zip(*columns, strict=True):
            if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in (o, h, lo, c)):
                continue
            out.append((int(t), float(o), float(max(h, o, c)), float(min(lo, o, c)), float(c),
                        float(vwap) if isinstance(vwap, (int, float)) and vwap > 0 and math.isfinite(vwap) else None,
                        float(qv5) if isinstance(qv5, (int, float)) and qv5 >= 0 and math.isfinite(qv5) else None))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ChartError(f"chart data is malformed: {exc}") from None
    return out


def render_png(symbol: str, series: dict[str, Any], signal_ms: int, signal_price: float, profile: str = "") -> bytes:
    """The chart as PNG bytes (WIDTH x HEIGHT); ChartError when the series has fewer than 2 usable candles."""
    candles = _candles(series)
    if len(candles) < 2:
        raise ChartError(f"{len(candles)} usable one-minute candles; a chart needs 2")
    from PIL import Image, ImageDraw, ImageFont  # here, not at import: a bot with charts off never loads Pillow

    image = Image.new("RGB", (WIDTH, HEIGHT), BG)
    draw = ImageDraw.Draw(image)
    if not _FONTS:  # loaded once: each load parses the bundled font again
        _FONTS.extend((ImageFont.load_default(size=12), ImageFont.load_default(size=15)))
    font, big = _FONTS

    t0 = candles[0][0]
    t1 = max(candles[-1][0] + MINUTE_MS, signal_ms + 1)
    prices = [p for c in candles for p in (c[2], c[3])] + [signal_price] + [c[5] for c in candles if c[5] is not None]
    prices = [p for p in prices if p > 0 and math.isfinite(p)]
    low, high = min(prices), max(prices)
    pad = (high - low) * 0.06 or high * 0.01
    low, high = low - pad, high + pad
    right = WIDTH - RIGHT

    def x_of(t_ms: float) -> float:
        return LEFT + (t_ms - t0) / (t1 - t0) * (right - LEFT)

    def y_of(price: float) -> float:
        return PRICE_BOTTOM - (price - low) / (high - low) * (PRICE_BOTTOM - TOP)

    # grid and price axis
    for i in range(5):
        price = low + (high - low) * i / 4
        y = y_of(price)
        draw.line([(LEFT, y), (right, y)], fill=GRID)
        draw.text((right + 4, y - 7), _fmt_price(price), font=font, fill=TEXT)
    # time axis: a tick every 5 minutes, labelled HH:MM (UTC)
    first_tick = -(-t0 // (5 * MINUTE_MS)) * 5 * MINUTE_MS
    for t in range(first_tick, t1 + 1, 5 * MINUTE_MS):
        x = x_of(t)
        draw.line([(x, TOP), (x, VOLUME_BOTTOM)], fill=GRID)
        draw.text((x - 15, VOLUME_BOTTOM + 6), time.strftime("%H:%M", time.gmtime(t / 1000)), font=font, fill=TEXT)
    draw.text((right + 4, VOLUME_BOTTOM + 6), "UTC", font=font, fill=TEXT)

    # volume bars (5-min quote volume at each minute's last row)
    volumes = [c[6] for c in candles if c[6] is not None]
    top_volume = max(volumes) if volumes else 0.0
    width = max(2.0, (right - LEFT) / ((t1 - t0) / MINUTE_MS) * 0.7)
    for t, o, _h, _lo, c, _vw, qv5 in candles:
        if qv5 and top_volume > 0:
            x = x_of(t + MINUTE_MS / 2)
            y = VOLUME_BOTTOM - qv5 / top_volume * (VOLUME_BOTTOM - VOLUME_TOP)
            draw.rectangle([x - width / 2, y, x + width / 2, VOLUME_BOTTOM], fill=UP if c >= o else VOLUME)
    if top_volume > 0:
        draw.text((LEFT + 2, VOLUME_TOP - 2), f"5-min quote volume, max {_fmt_volume(top_volume)}", font=font, fill=TEXT)

    # candles, then the VWAP line over them
    for t, o, h, lo, c, _vw, _qv in candles:
        x = x_of(t + MINUTE_MS / 2)
        colour = UP if c >= o else DOWN
        draw.line([(x, y_of(h)), (x, y_of(lo))], fill=colour, width=1)
        y_open, y_close = y_of(o), y_of(c)
        draw.rectangle([x - width / 2, min(y_open, y_close), x + width / 2, max(y_open, y_close) + 1], fill=colour)
    vwap_points = [(x_of(t + MINUTE_MS / 2), y_of(v)) for t, *_, v, _q in candles if v is not None]
    if len(vwap_points) >= 2:
        draw.line(vwap_points, fill=VWAP, width=2)

    # the signal: a dashed line at its moment, a ring at its price, the price written beside it
    xs, ys = x_of(signal_ms), y_of(signal_price)
    for y in range(TOP, VOLUME_BOTTOM, 8):
        draw.line([(xs, y), (xs, min(y + 4, VOLUME_BOTTOM))], fill=SIGNAL, width=1)
    draw.ellipse([xs - 5, ys - 5, xs + 5, ys + 5], outline=SIGNAL, width=2)
    label = f"signal {_fmt_price(signal_price)}"
    lx = xs - 8 - draw.textlength(label, font=font) if xs > right - 120 else xs + 8
    draw.text((lx, ys + 8 if ys < TOP + 30 else ys - 20), label, font=font, fill=SIGNAL)

    title = f"{symbol}  1m  last {round((t1 - t0) / MINUTE_MS)} min" + (f"  ·  {profile}" if profile else "")
    draw.text((LEFT + 2, 6), title, font=big, fill=TEXT)
    draw.line([(right - 110, 15), (right - 92, 15)], fill=VWAP, width=2)
    draw.text((right - 88, 8), "5-min VWAP", font=font, fill=VWAP)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def in_child(render: Callable[..., bytes], *args: Any) -> bytes:
    """render(*args) in a child forked for it; its PNG, or ChartError with the child's error (also when it died).

    Call it from a worker thread: it blocks until the child is done. The child writes one status
    byte and the PNG (or the error text) to a pipe and leaves with os._exit, running nothing of the
    parent's (no atexit, no buffered output, no event loop).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status, body = 1, b"chart child failed"
        try:
            os.close(read_fd)
            body, status = render(*args), 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
            body = f"{type(exc).__name__}: {str(exc)[:300]}".encode()
        finally:
            try:
                with os.fdopen(write_fd, "wb") as out:
                    out.write(bytes([status]) + body)
            finally:
                os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if not data:
        raise ChartError("the chart process died without an answer")
    if data[0] != 0:
        raise ChartError(data[1:].decode("utf-8", "replace"))
    return data[1:]


__all__ = ["ChartError", "render_png", "in_child", "WIDTH", "HEIGHT"]
