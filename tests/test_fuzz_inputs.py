"""Arbitrary input at every border of the service: a clear error or a correct result, never a crash.

Hypothesis generates the garbage: configuration documents and /cfg text, exchange REST bodies
(exchangeInfo, ticker/24hr, depth snapshots), Telegram command text and button data. What a user
relies on: the config loader raises only ConfigError and /cfg never half-applies; a malformed
exchange answer is one caught error, never NaN in a book; any command text gets a text answer.
(The protobuf decoder has its own million-input fuzzer: perf/fuzz_decode.py.)
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import commands
from common.config import ConfigError, config_from_mapping, set_value
from common.rest import RestError
from common.signal import is_valid_signal_id, make_signal_id
from shards.worker import _parse_levels
from supervisor.scout import parse_exchange_info, parse_tickers
from tests.test_bot_commands import State

SECTIONS = ("mexc", "scanner", "scout", "ws", "telegram", "storage", "trading", "metrics", "outcome", "logging")
KEYS = ("ws_url", "vsr_min", "vc_max", "prob_threshold", "cooldown_s", "poll_interval_s", "top_n", "max_streams_per_conn",
        "token", "allowed_ids", "data_dir", "live", "stake_usd", "port", "level", "horizon_s", "take_profit", "nope")  # fmt: skip

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=30), st.sampled_from(["${X}", "${X:-1}", "${", "1e309", "nan", "-inf", "0x10", " 5 "]))  # fmt: skip
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                         max_leaves=25)  # fmt: skip
config_docs = st.one_of(
    json_like,
    st.dictionaries(st.sampled_from(SECTIONS + ("junk",)), st.one_of(json_like, st.dictionaries(st.sampled_from(KEYS), json_like, max_size=6)),
                    max_size=6),
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_docs, st.dictionaries(st.sampled_from(["X", "TG_TOKEN", "ALLOWED_IDS", "METRICS_PORT"]), st.text(max_size=12), max_size=3))
def test_any_config_document_loads_or_raises_config_error(doc: Any, environ: dict[str, str]) -> None:
    try:
        config = config_from_mapping(doc, environ=environ)
    except ConfigError as exc:
        assert str(exc)  # a reason a human can read
        return
    assert 0.0 <= config.scanner.prob_threshold <= 1.0 and config.ws.max_streams_per_conn >= 1


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.sampled_from([f"{s}.{k}" for s in SECTIONS for k in KEYS]), st.text(max_size=40)), st.text(max_size=40))
def test_cfg_set_refuses_clearly_or_applies_and_never_changes_the_original(key: str, text: str) -> None:
    config = config_from_mapping({}, environ={})
    before = config.to_public_dict()
    try:
        new = set_value(config, key, text)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert new is not config
    assert config.to_public_dict() == before


@settings(max_examples=500, deadline=None)
@given(json_like)
def test_a_garbage_depth_snapshot_is_refused_and_never_yields_a_bad_level(body: Any) -> None:
    for key in ("bids", "asks"):
        try:
            levels = _parse_levels(body, key)
        except (KeyError, TypeError, ValueError):
            continue
        assert all(math.isfinite(p) and p > 0 and math.isfinite(q) and q >= 0 for p, q in levels)


@settings(max_examples=500, deadline=None)
@given(json_like, json_like)
def test_garbage_exchange_info_and_tickers_parse_or_raise_rest_error(info: Any, tickers: Any) -> None:
    for parse in (lambda: parse_exchange_info(info, tickers), lambda: parse_tickers(tickers)):
        try:
            out = parse()
        except RestError:
            continue
        assert isinstance(out, dict) and all(isinstance(k, str) for k in out)
    try:
        volumes = parse_tickers(tickers)
    except RestError:
        return
    assert all(math.isfinite(v) and v >= 0 for v in volumes.values())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.lists(st.text(max_size=20), max_size=4))
def test_any_command_text_gets_a_text_answer(name: str, args: list[str]) -> None:
    state = State({"type": "status_reply", "status": {}, "ok": False, "message": "refused"})
    reply = asyncio.run(commands.answer(state, name.lower(), args))
    assert isinstance(reply, str) and reply
    assert "SECRET-TOKEN" not in reply


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=64))
def test_button_data_is_validated_before_any_lookup(data: str) -> None:
    action, _, signal_id = data.partition(":")
    if is_valid_signal_id(signal_id):
        symbol, t_ms, escalation = signal_id.rsplit("-", 2)
        assert make_signal_id(symbol, int(t_ms), int(escalation)) == signal_id
        assert len(f"{action}:{signal_id}".encode()) <= 64 or len(data.encode()) > 64
