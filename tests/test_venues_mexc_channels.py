"""Ack parsing: MEXC's refusals carry code 0, so only msg tells success from failure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from venues.mexc.channels import AckKind, pair_channels, parse_ack, symbol_of


def test_pair_channels_use_the_pb_names_with_interval_before_symbol() -> None:
    deals, depth = pair_channels("PEPEUSDT", "100ms", "10ms")
    assert deals == "spot@public.aggre.deals.v3.api.pb@100ms@PEPEUSDT"
    assert depth == "spot@public.aggre.depth.v3.api.pb@10ms@PEPEUSDT"
    assert symbol_of(depth) == "PEPEUSDT"


def test_success_ack_echoes_channels() -> None:
    a, b = pair_channels("BTCUSDT")
    ack = parse_ack('{"id":0,"code":0,"msg":"%s,%s"}' % (a, b))
    assert ack.kind is AckKind.SUBSCRIBED and ack.ok == [a, b]


def test_blocked_refusal_with_code_zero_is_a_refusal() -> None:
    a, b = pair_channels("NOPEUSDT")
    text = '{"id":0,"code":0,"msg":"Not Subscribed successfully! [%s,%s].  Reason\uff1a Blocked! "}' % (a, b)
    ack = parse_ack(text)
    assert ack.kind is AckKind.REFUSED
    assert ack.refused == [a, b] and ack.ok == []


def test_mixed_form_splits_ok_and_refused() -> None:
    a, b = pair_channels("BTCUSDT")
    c, _ = pair_channels("NOPEUSDT")
    text = '{"id":0,"code":0,"msg":"Subscribed successful! [%s,%s]. Not Subscribed successfully! [%s].  Reason\uff1a Blocked! "}' % (a, b, c)
    ack = parse_ack(text)
    assert ack.kind is AckKind.REFUSED and ack.ok == [a, b] and ack.refused == [c]


def test_pong_and_garbage() -> None:
    assert parse_ack(b'{"id":0,"code":0,"msg":"PONG"}').kind is AckKind.PONG
    assert parse_ack("not json").kind is AckKind.ERROR
    assert parse_ack("[1,2]").kind is AckKind.ERROR
    assert parse_ack('{"code":1,"msg":"bad"}').kind is AckKind.ERROR


@given(st.text(max_size=300))
def test_parse_ack_never_raises(text: str) -> None:
    assert parse_ack(text).kind in set(AckKind)
