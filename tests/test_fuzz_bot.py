"""Fuzzing the Telegram side: arbitrary callback_data and command text never crash the bot, never
reach the store before validation, and always get a clear answer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import commands
from common.signal import is_valid_signal_id, make_signal_id
from sim.fake_telegram import run_fake_telegram
from tests.test_bot_commands import State
from tests.test_bot_telegram import OWNER, _until, running_bot


@settings(max_examples=3000, deadline=None)
@given(text=st.text(max_size=64) | st.from_regex(r"[A-Z0-9]{1,24}-[0-9]{10,14}-[0-9]{1,2}.{0,2}", fullmatch=True))
def test_a_valid_signal_id_has_only_the_parts_make_signal_id_builds(text: str) -> None:
    if is_valid_signal_id(text):
        assert text.isascii() and len(("skip:" + text).encode()) <= 64 and "\n" not in text
        symbol, t, esc = text.split("-")
        assert symbol.isalnum() and symbol == symbol.upper() and t.isdigit() and esc.isdigit()
        # leading zeros aside, it is the id make_signal_id builds for those parts
        assert make_signal_id(symbol, int(t), int(esc)) == f"{symbol}-{int(t)}-{int(esc)}"


@pytest.mark.parametrize("text", ["PEPEUSDT-1790000000000-0\n", "PEPEUSDT-١٧٩٠٠٠٠٠٠٠٠٠٠-0", "PEPEUSDT-1790000000000-٠"])
def test_trailing_newline_and_non_ascii_digits_are_not_signal_ids(text: str) -> None:
    assert not is_valid_signal_id(text)


@settings(max_examples=1000, deadline=None)
@given(name=st.text(max_size=20), args=st.lists(st.text(max_size=30), max_size=4), ok=st.booleans())
async def test_any_command_text_gets_a_clear_answer_and_never_the_token(name: str, args: list[str], ok: bool) -> None:
    state = State({"ok": ok, "message": "x", "status": {"processes": [{"name": "s"}], "links": 1}})
    text = await commands.answer(state, name.lower(), args)
    assert isinstance(text, str) and text.strip()
    assert "SECRET-TOKEN" not in text


def _garbage_callback_data(rng: random.Random) -> str:
    """Up to 64 UTF-8 bytes (Telegram's limit) of mixed ASCII, control and non-ASCII characters."""
    alphabet = "buyskip:-0123456789ABCXYZ\n\t\x00 ./%é١٢😀"
    while True:
        prefix = rng.choice(["buy:", "skip:", "", "BUY:", "buy::"])
        text = prefix + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        if len(text.encode()) <= 64:
            return text


async def test_random_callback_data_is_answered_and_never_looked_up(tmp_path: Path) -> None:
    rng = random.Random(9)
    datas = [_garbage_callback_data(rng) for _ in range(40)] + [
        "buy:PEPEUSDT-1790000000000-0\n",
        "skip:PEPEUSDT-١٧٩٠٠٠٠٠٠٠٠٠٠-0",
    ]
    datas = [d for d in datas if not is_valid_signal_id(d.partition(":")[2])]
    async with run_fake_telegram() as fake, running_bot(fake, tmp_path) as (bot, _):
        looked_up: list[str] = []
        real_get = bot.store.get_signal

        def spy(signal_id: str):  # noqa: ANN202 - mirrors Store.get_signal
            looked_up.append(signal_id)
            return real_get(signal_id)

        bot.store.get_signal = spy  # type: ignore[method-assign]
        for i, data in enumerate(datas):
            await fake.inject_callback(OWNER, OWNER, i + 1, data)
        answers = await _until(
            lambda: len(fake.sent("answerCallbackQuery")) >= len(datas) and fake.sent("answerCallbackQuery"), 20
        )
        assert [a["text"] for a in answers] == ["Unknown button."] * len(datas)
        assert looked_up == []
        # the spy does see a well-formed id, so the assertion above can fail
        await fake.inject_callback(OWNER, OWNER, 999, "buy:PEPEUSDT-1790000000000-0")
        await _until(lambda: looked_up)
        assert looked_up == ["PEPEUSDT-1790000000000-0"]


_ODD_FLOAT = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-12, 0.4996, 1e300])


@settings(max_examples=500, deadline=None)
@given(
    symbol=st.text(min_size=1, max_size=24), price=_ODD_FLOAT, prob=_ODD_FLOAT, trained=st.booleans(),
    features=st.dictionaries(st.sampled_from(["vsr", "pm", "rush_ratio_25s", "ret_25s"]), _ODD_FLOAT),
    reasons=st.lists(st.text(max_size=80), max_size=10), context=st.lists(st.none() | _ODD_FLOAT, min_size=4, max_size=4),
    profile=st.sampled_from(["alpha1", "flash"]), fill=st.none() | _ODD_FLOAT,
)  # fmt: skip
def test_any_card_and_decided_card_is_valid_markdown_v2_within_telegrams_limit(
    symbol: str, price: float, prob: float, trained: bool, features: dict, reasons: list, context: list, profile: str, fill: float | None
) -> None:
    """Issue #24's new card lines (score label, changes, volume, link, fill) keep every card valid MarkdownV2."""
    from bot.cards import card_text, decided_text, fill_text
    from common.signal import Signal
    from sim.fake_telegram import markdown_v2_error

    sig = Signal("AUSDT-1790000000000-0", symbol, profile, 1_790_000_000_000, 0, 0, price, prob, features, reasons, 0, trained, *context)
    text = card_text(sig, now_ns=10**9)
    assert markdown_v2_error(text) is None and len(text) < 4096
    line = fill_text(price, fill, "paper")
    if line is not None:
        decided = decided_text(text, "🛒 Buy by 1 (paper): ok\n" + line)
        assert markdown_v2_error(decided) is None
