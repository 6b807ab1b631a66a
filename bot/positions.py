"""Positions in Telegram: the Sell button and its confirmation, /sell, /positions, /pnl, /portfolio,
card edits when a position closes, the watcher (automatic exits, balancer, daily summary).

Why a module apart from process.py: the positions' texts and buttons are pure functions of the
ledger (trading/), and process.py only routes to them; messages go out through the bot's notifier
(bot/notifier.py: rate limits, 429 backoff) and card edits through its card sender (bot/sender.py),
the path every other message takes.

Why a confirmation step: a Sell is a real market order in live mode; one stray tap must not send
it. The Sell button and /sell only ask; "Confirm sell" sells.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from bot.cards import escape, format_duration, format_price
from trading.audit import audit

log = logging.getLogger("scanner.bot")
NAMES = ("positions", "pnl", "sell", "portfolio")
ACTIONS = ("sell", "sx", "sxno")
HELP = ("/positions — open positions with live PnL; /pnl [24h|7d|all] — realised and unrealised PnL, win rate, averages\n"
        "/sell SYMBOL [pct] — sell all or pct % of a position (asks to confirm)\n"
        "/portfolio — holdings, weights, drift from trading.portfolio_targets, AvgCost PnL per asset")  # fmt: skip
WINDOWS = {"24h": 86400, "7d": 7 * 86400, "all": None}
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


def sell_markup(signal_id: str) -> InlineKeyboardMarkup:
    """The card's button once its Buy filled."""
    return InlineKeyboardMarkup([[InlineKeyboardButton("Sell", callback_data=f"sell:{signal_id}")]])


def confirm_markup(symbol: str, pct: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"Confirm sell {pct}%", callback_data=f"sx:{symbol}:{pct}"),
                                  InlineKeyboardButton("Cancel", callback_data=f"sxno:{symbol}")]])  # fmt: skip


def fill_line(qty: float | None, price: float | None, fee: float, quote: str = "USDT", approx: bool = False) -> str | None:
    """The Buy's fill for the card: quantity, average price and fee (approx: an MX fee converted at a later price)."""
    if not qty or not price:
        return None
    return f"Filled {qty:.10g} at {format_price(price)}, fee {'≈' if approx else ''}{fee:.4g} {quote}" + (
        " (MX fee converted at a later price: approximate)" if approx else "")


def _trader(bot: Any) -> Any:
    trader = getattr(bot, "trader", None)
    return trader if trader is not None and hasattr(trader, "exits") else None


async def format_positions(bot: Any) -> str:
    trader = _trader(bot)
    if trader is None:
        return "Positions are not available (no trader)."
    mode = trader.exits.mode
    prices = await trader.exits.mark()
    rows = trader.ledger.open(mode)
    if not rows:
        return f"No open {mode} positions."
    lines = [f"Open {mode} positions:"]
    for fig in rows:
        price = prices.get(fig.row.symbol)
        held = format_duration((time.time_ns() - fig.row.opened_ns) / 1e9)
        approx = f"; fees approximate ({fig.pos.approx_fees} MX fee(s) converted at a later price)" if fig.pos.approx_fees else ""
        head = f"{fig.row.symbol}: {fig.pos.qty:.10g} {fig.row.base} at avg {format_price(fig.pos.avg_price)}, cost {fig.pos.cost:.2f}"
        if price is None:
            lines.append(f"{head}; no price now; held {held}{approx}")
            continue
        pnl = fig.pos.unrealised(price)
        pct = pnl / fig.pos.cost * 100 if fig.pos.cost > 0 else 0.0
        lines.append(f"{head}; now {format_price(price)}: {pnl:+.2f} {fig.row.quote} ({pct:+.2f}%); held {held}{approx}")
    return "\n".join(lines)


async def format_pnl(bot: Any, window: str) -> str:
    trader = _trader(bot)
    if trader is None:
        return "PnL is not available (no trader)."
    if window not in WINDOWS:
        return "Usage: /pnl [24h|7d|all]"
    span = WINDOWS[window]
    since = 0 if span is None else time.time_ns() - span * 10**9
    mode = trader.exits.mode
    s = trader.ledger.pnl(mode, since, await trader.exits.mark())
    win = "n/a" if s["win_rate"] is None else f"{s['win_rate'] * 100:.0f}%"
    avg = "n/a" if s["avg_pnl"] is None else f"{s['avg_pnl']:+.2f}"
    hold = "n/a" if s["avg_hold_s"] is None else format_duration(s["avg_hold_s"])
    return (f"PnL {window} ({mode}): realised {s['realised']:+.2f} USDT over {s['trades']} closed trades "
            f"(win rate {win}, average {avg} USDT, average hold {hold}, fees {s['fees']:.2f}); "
            f"open positions: {s['open']}, unrealised {s['unrealised']:+.2f} USDT"
            + (f" ({s['open'] - s['priced']} without a price)" if s["open"] != s["priced"] else "")
            + (f", realised on them so far {s['realised_open']:+.2f}" if s["realised_open"] else ""))  # fmt: skip


def _confirm_text(bot: Any, symbol: str, pct: int) -> str | None:
    trader = _trader(bot)
    row = trader.ledger.positions.open_position(trader.exits.mode, symbol) if trader else None
    fig = trader.ledger.figures(row.position_id) if row else None
    if fig is None:
        return None
    return (f"Sell {pct}% of {symbol} ({fig.pos.qty * pct / 100:.10g} {fig.row.base}, average entry {format_price(fig.pos.avg_price)}) "
            f"at market{' (paper)' if trader.exits.mode == 'paper' else ''}?")  # fmt: skip


async def sell_command(bot: Any, update: Update, args: list[str]) -> None:
    """/sell SYMBOL [pct]: ask for confirmation with buttons."""
    message = update.effective_message
    if message is None:
        return
    symbol = args[0].upper() if args else ""
    try:
        pct = int(float(args[1].rstrip("%"))) if len(args) > 1 else 100
    except ValueError:
        pct = -1
    if not _SYMBOL.match(symbol) or not 1 <= pct <= 100 or len(args) > 2:
        await bot.notifier.send_text(message.chat_id, "Usage: /sell SYMBOL [pct] — e.g. /sell PEPEUSDT 50 (pct 1..100, default 100)",
                                     urgent=True)  # fmt: skip
        return
    text = _confirm_text(bot, symbol, pct)
    if text is None:
        await bot.notifier.send_text(message.chat_id, f"No open position in {symbol}. /positions lists them.", urgent=True)
        return
    await bot.notifier.send_text(message.chat_id, text, buttons=confirm_markup(symbol, pct), urgent=True)


async def answer(bot: Any, update: Update, name: str, args: list[str]) -> str | None:
    """The reply for /positions, /pnl; /sell answers itself (it carries buttons) and returns None."""
    if name == "positions":
        return await format_positions(bot)
    if name == "pnl":
        return await format_pnl(bot, (args[0].lower() if args else "24h"))
    if name == "portfolio":
        trader = _trader(bot)
        return await trader.portfolio.view() if trader is not None and hasattr(trader, "portfolio") else "No portfolio (no trader)."
    await sell_command(bot, update, args)
    return None


async def on_callback(bot: Any, update: Update, action: str, arg: str) -> None:
    """Sell (ask), sx:SYMBOL:PCT (confirmed: sell), sxno (cancelled)."""
    query = update.callback_query
    assert query is not None
    trader = _trader(bot)
    if trader is None:
        await query.answer("Trading is not available.")
        return
    if action == "sxno":
        await query.answer("Not sold.")
        with contextlib.suppress(TelegramError):
            await query.edit_message_text("Sell cancelled; nothing was sold.")
        return
    if action == "sell":
        sig = bot.store.get_signal(arg)
        text = _confirm_text(bot, sig.symbol, 100) if sig is not None else None
        await query.answer("Confirm below." if text else "Nothing to sell for this card.")
        if text is not None and query.message is not None:
            await bot.notifier.send_text(query.message.chat.id, text, buttons=confirm_markup(sig.symbol, 100), urgent=True)
        return
    symbol, _, pct_text = arg.partition(":")
    pct = int(pct_text) if pct_text.isdigit() and 1 <= int(pct_text) <= 100 else 0
    if not _SYMBOL.match(symbol) or not pct:
        await query.answer("Unknown button.")
        return
    user = update.effective_user
    result = await trader.exits.sell(symbol, pct / 100, f"sell {pct}% pressed by {user.id if user else '?'}")
    await query.answer(result.message[:190], show_alert=not result.ok)
    with contextlib.suppress(TelegramError):
        await query.edit_message_text(("✅ " if result.ok else "❌ ") + result.message)
    if result.ok and result.position_id:
        await edit_cards(bot, result.position_id)


def _card_lines(bot: Any, signal_id: str, position_id: str) -> tuple[str, bool]:
    """The position's story on one card: its Buy's fill, then (once closed) the realised PnL."""
    trader = _trader(bot)
    fig = trader.ledger.figures(position_id)
    order = bot.store.db.execute("SELECT client_order_id FROM orders WHERE signal_id = ?", (signal_id,)).fetchone()
    lines = []
    if order is not None:
        fills = trader.ledger.positions.fills_of_order(order[0])
        qty = sum(f.qty for f in fills)
        if qty > 0:
            price = sum(f.qty * f.price for f in fills) / qty
            decided = bot.store.get_action(signal_id)
            who = f" by {decided[1]}" if decided else ""
            lines.append(f"🛒 Buy{who} ({fig.row.mode}): " + (fill_line(qty, price, trader.ledger.order_fee(order[0]), fig.row.quote,
                                                                               trader.ledger.order_fee_approx(order[0])) or ""))
    closed = fig.row.status == "closed"
    if closed:
        pct = fig.pos.realised / fig.pos.invested * 100 if fig.pos.invested > 0 else 0.0
        held = format_duration(((fig.row.closed_ns or 0) - fig.row.opened_ns) / 1e9)
        lines.append(f"✅ Position closed: PnL {fig.pos.realised:+.2f} {fig.row.quote} ({pct:+.2f}%), held for {held}"
                     + (f"; {fig.row.note}" if fig.row.note else ""))  # fmt: skip
    else:
        lines.append(f"Position: {fig.pos.qty:.10g} {fig.row.base} left, realised so far {fig.pos.realised:+.2f} {fig.row.quote}")
    return "\n".join(lines), closed


async def edit_cards(bot: Any, position_id: str) -> None:
    """Edit every card whose Buy filled into the position: its fill, and its PnL once closed (no buttons then).

    Through the card sender (bot/sender.py), so photo cards get their caption edited and every copy
    of the card (all target chats) is reached.
    """
    trader = _trader(bot)
    for signal_id in trader.ledger.positions.buy_signals(position_id):
        sig = bot.store.get_signal(signal_id)
        if sig is None:
            continue
        text, closed = _card_lines(bot, signal_id, position_id)
        try:
            await bot.cards.edit_all(sig, escape(text), keep_buttons=False, buttons=None if closed else sell_markup(signal_id))
        except TelegramError as exc:
            log.warning("could not edit a position's card", extra={"signal_id": signal_id, "error": str(exc)[:200]})


async def _tell(bot: Any, text: str) -> None:
    for chat_id in bot.config.telegram.allowed_ids:
        with contextlib.suppress(TelegramError):
            await bot.notifier.send_text(chat_id, text[:4000])


async def watch(bot: Any, stop: asyncio.Event) -> None:
    """Background: settle exits a killed process left in doubt, then run the automatic exits and the daily summary."""
    trader = _trader(bot)
    if trader is None:
        return
    try:
        for result in await trader.exits.reconcile_all():
            await _tell(bot, f"Exit found after a restart: {result.message}")
            if result.ok and result.position_id:
                await edit_cards(bot, result.position_id)
        for line in await audit(trader):
            await _tell(bot, "Start-up check: " + line)
    except Exception:  # noqa: BLE001 - the next /sell reconciles again; the bot must start
        log.exception("reconciling exits after a restart failed")
    while not stop.is_set():
        t = bot.config.trading
        try:
            bot.watch_prices(sorted({f.row.symbol for f in trader.ledger.open(trader.exits.mode)}))  # their 1 s closes (Closes)
            closes = bot.fresh_closes()
            for result in await trader.exits.check_exits(closes):
                await _tell(bot, result.message)
                if result.ok and result.position_id:
                    await edit_cards(bot, result.position_id)
            for line in await trader.portfolio.rebalance():
                await _tell(bot, line)
            await daily_summary(bot, time.time())
        except Exception:  # noqa: BLE001 - the watcher must outlive one bad pass
            log.exception("position watcher pass failed")
        await _next_pass(bot, stop, t.exit_check_s)


async def daily_summary(bot: Any, now_s: float) -> bool:
    """Send the daily /pnl + /positions message when now_s is in trading.daily_summary_hour_utc and it was not sent that UTC day.

    The day is claimed in the store (store/positions.py claim_day) before the message goes out, so
    a bot restarted within the hour does not send it again; a crash between the claim and the send
    loses that day's summary rather than repeating it (at most once a day). True when it was sent.
    """
    trader = _trader(bot)
    hour = bot.config.trading.daily_summary_hour_utc
    now = time.gmtime(now_s)
    if trader is None or hour < 0 or now.tm_hour != hour:
        return False
    if not trader.ledger.positions.claim_day("daily_summary", time.strftime("%Y-%m-%d", now), int(now_s * 1e9)):
        return False
    await _tell(bot, "Daily summary — " + await format_pnl(bot, "24h") + "\n" + await format_positions(bot))
    return True


async def _next_pass(bot: Any, stop: asyncio.Event, timeout_s: float) -> None:
    """Until the next closes arrive (about once a second while a position is held), stop, or timeout_s."""
    event: asyncio.Event | None = getattr(bot, "closes_event", None)
    waits = {asyncio.ensure_future(stop.wait())} | ({asyncio.ensure_future(event.wait())} if event is not None else set())
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
        if event is not None:
            event.clear()


__all__ = ["ACTIONS", "HELP", "NAMES", "answer", "daily_summary", "edit_cards", "fill_line", "on_callback", "sell_markup", "watch"]
