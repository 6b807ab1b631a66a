"""The pump detector (detectors/pump.py) through the shared scorer: alpha1's rule filter, model
probability, cooldown and escalation; model.json validation (detectors/model.py)."""

from __future__ import annotations

import copy
import json
import math
import re
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from common.detector_config import Alpha1Config, CooldownConfig, FlashConfig, PumpConfig, PumpProfilesConfig
from core.rowspec import FEATURE_ROW_DTYPE, ROW_BASELINE_READY, ROW_BOOK_VALID, ROW_CANDIDATE, ROW_LISTING_KNOWN
from detectors.model import CLIP, ModelError, load_model, model_from_dict
from detectors.pump import ALPHA1, FLASH, PUMP
from detectors.scorer import Scorer

REPO = Path(__file__).resolve().parent.parent
MODEL = load_model(REPO / "model.json")
ALL_FLAGS = ROW_BOOK_VALID | ROW_BASELINE_READY | ROW_LISTING_KNOWN
T0 = 1_790_000_000_000


def _cfg(**settings: Any) -> PumpConfig:
    """detectors.pump with alpha1 enabled; each setting goes to the cooldown or alpha1 section by name."""
    cooldown = {k: v for k, v in settings.items() if k in CooldownConfig.__dataclass_fields__}
    alpha1 = {k: v for k, v in settings.items() if k not in cooldown}
    return PumpConfig(cooldown=CooldownConfig(**cooldown), profiles=PumpProfilesConfig(alpha1=Alpha1Config(**alpha1)))


def _rows(n: int, **overrides: object) -> np.ndarray:
    rows = np.zeros(n, dtype=FEATURE_ROW_DTYPE)
    base = dict(vsr=10.0, vc=0.3, pm=0.05, obi=0.5, cum_depth_delta=3.0, spread=0.002, listing_age_s=10_000.0, last_price=1.0, flags=ALL_FLAGS, pair_id=1)
    for key, value in {**base, **overrides}.items():
        rows[key] = value
    rows["seq"] = np.arange(1, n + 1)
    rows["row_time_ms"] = T0 + np.arange(n) * 1000
    return rows


def _at(rows: np.ndarray, t_ms: int) -> np.ndarray:
    rows["row_time_ms"] = t_ms
    return rows


def test_shipped_model_meets_its_documented_calibration() -> None:
    assert MODEL.profile == "alpha1" and MODEL.trained is None
    assert MODEL.probability(_rows(1, vsr=5.0, pm=0.02, obi=0.25))[0] == pytest.approx(0.5)
    assert MODEL.probability(_rows(1))[0] >= 0.8
    # A NaN feature is "no evidence", not a crash or a NaN probability.
    assert MODEL.probability(_rows(1, vsr=5.0, pm=0.02, obi=float("nan")))[0] == pytest.approx(0.5)


def test_a_clear_pump_signals_once_per_cooldown_and_escalates_once() -> None:
    scorer = Scorer(PUMP, _cfg(period_s=600, realert_factor=2.0, max_realerts=1), MODEL)
    first = scorer.score(_rows(1000))  # 1,000 passing rows of one pair in one batch: one signal
    assert len(first) == 1 and first[0].escalation == 0
    assert first[0].row["seq"] == 1000  # decided on the newest row: the freshest price
    t_first = first[0].row["row_time_ms"]
    assert scorer.score(_at(_rows(5, pm=0.09), t_first + 60_000)) == []  # grown, but not 2x
    again = scorer.score(_at(_rows(1, pm=0.11), t_first + 120_000))
    assert [d.escalation for d in again] == [1]
    assert scorer.score(_at(_rows(1, pm=0.5), t_first + 180_000)) == []  # max_realerts reached
    assert scorer.score(_at(_rows(1), t_first + 599_999)) == []  # still inside the cooldown
    assert [d.escalation for d in scorer.score(_at(_rows(1), t_first + 600_000))] == [0]


def test_cooldown_runs_on_exchange_time_not_wall_time() -> None:
    scorer = Scorer(PUMP, _cfg(period_s=600), MODEL)
    assert len(scorer.score(_rows(1), now_ns=0)) == 1
    # An hour of wall time later, the exchange clock has moved 10 s: still cooling down.
    assert scorer.score(_at(_rows(1), T0 + 10_000), now_ns=3600 * 10**9) == []


def test_many_pairs_in_one_batch_get_one_decision_each_in_time_order() -> None:
    rows = _rows(300)
    rows["pair_id"] = np.arange(300) % 3
    rows["row_time_ms"] = T0 + (299 - np.arange(300)) * 10  # newest first: order must not matter
    decisions = Scorer(PUMP, _cfg(), MODEL).score(rows)
    assert sorted(d.pair_id for d in decisions) == [0, 1, 2]
    assert all(d.row["row_time_ms"] == rows["row_time_ms"][rows["pair_id"] == d.pair_id].max() for d in decisions)
    assert [d.row["row_time_ms"] for d in decisions] == sorted(d.row["row_time_ms"] for d in decisions)


@pytest.mark.parametrize(
    "override",
    [dict(vsr=4.9), dict(vc=0.6), dict(pm=0.01), dict(obi=0.2), dict(cum_depth_delta=-1.0), dict(spread=0.02),
     dict(listing_age_s=100.0), dict(obi=float("nan")), dict(vsr=float("nan")), dict(vc=float("nan")),
     dict(pm=float("nan")), dict(spread=float("nan")), dict(cum_depth_delta=float("nan")), dict(listing_age_s=float("nan")),
     dict(flags=ROW_BASELINE_READY | ROW_LISTING_KNOWN), dict(flags=ROW_BOOK_VALID | ROW_LISTING_KNOWN),
     dict(flags=ROW_BOOK_VALID | ROW_BASELINE_READY), dict(flags=0)],
)  # fmt: skip
def test_each_rule_nan_and_missing_flag_blocks_a_signal(override: dict) -> None:
    scorer = Scorer(PUMP, _cfg(), MODEL)
    assert len(scorer.score(_rows(3, pair_id=2))) == 1  # the same rows without the flaw signal
    assert scorer.score(_rows(3, **override)) == []


def test_candidate_rows_are_scored_like_closed_bars_and_reasons_say_why() -> None:
    decisions = Scorer(PUMP, _cfg(), MODEL).score(_rows(1, flags=ALL_FLAGS | ROW_CANDIDATE, vsr=7.4))
    assert len(decisions) == 1
    reasons = decisions[0].reasons
    assert "Volume vs 6 h median (VSR) 7.4 > 5" in reasons and "Price above 5-min VWAP (PM) 5.00% > 2%" in reasons
    assert "Bid/ask imbalance (OBI) 0.50 > 0.25" in reasons and "Spread 0.20% < 1.5%" in reasons
    assert "Listed for (ListingAge) 2.78 h > 0.25 h" in reasons  # 10,000 s; the 900 s threshold reads exactly in hours
    assert decisions[0].prob == pytest.approx(float(MODEL.probability(_rows(1, vsr=7.4))[0]))


def test_thresholds_come_from_config_and_update_keeps_cooldown() -> None:
    rows = _rows(1, vsr=6.0)
    assert Scorer(PUMP, _cfg(vsr_min=7.0), MODEL).score(rows) == []
    assert Scorer(PUMP, _cfg(prob_threshold=0.99), MODEL).score(rows) == []
    # The default row (PM 5 %, OBI 0.5, spread 0.2 %, age 10,000 s, VC 0.3, depth +3) fails each tightened rule.
    tightened = dict(pm_min=0.06, obi_min=0.6, spread_max=0.001, listing_age_min_s=20_000.0, vc_max=0.2, cum_depth_delta_min=5.0)
    for name, value in tightened.items():
        assert Scorer(PUMP, _cfg(**{name: value}), MODEL).score(_rows(1)) == [], name
    scorer = Scorer(PUMP, _cfg(vsr_min=5.5), MODEL)
    assert len(scorer.score(rows)) == 1
    scorer.update(_cfg(vsr_min=1.0), MODEL)
    assert scorer.score(_at(_rows(1, vsr=6.0), T0 + 5000)) == []  # reload did not reset the cooldown


def _reference(batches: list[np.ndarray], config: PumpConfig) -> list[tuple[int, int, float, int]]:
    """The scorer's documented semantics as a plain per-row Python loop."""
    a, cd = config.profiles.alpha1, config.cooldown
    state: dict[int, list[Any]] = {}
    out = []
    for rows in batches:
        best: dict[int, tuple[tuple[int, int], float]] = {}
        for pos in range(len(rows)):
            r = {name: rows[pos][name].item() for name in rows.dtype.names}
            f = r["flags"]
            ok = (
                f & ROW_BASELINE_READY and f & ROW_BOOK_VALID and f & ROW_LISTING_KNOWN
                and r["vsr"] > a.vsr_min and r["vc"] < a.vc_max and r["pm"] > a.pm_min
                and r["obi"] > a.obi_min and r["cum_depth_delta"] > a.cum_depth_delta_min
                and r["spread"] < a.spread_max and r["listing_age_s"] > a.listing_age_min_s
            )  # fmt: skip
            if not ok:
                continue
            score = sum(MODEL.weights[n] * min(max((r[n] - MODEL.centers[n]) / MODEL.scales[n], -CLIP), CLIP) for n in MODEL.features)
            prob = 1.0 / (1.0 + math.exp(-(MODEL.beta0 + MODEL.beta * score)))
            if prob < a.prob_threshold:
                continue
            key = (r["row_time_ms"], pos)
            if r["pair_id"] not in best or key > best[r["pair_id"]][0]:
                best[r["pair_id"]] = (key, prob)
        for pair, ((t, pos), prob) in sorted(best.items(), key=lambda kv: (kv[1][0][0], kv[0])):
            pm = float(rows[pos]["pm"])
            s = state.get(pair)
            if s is None or t - s[0] >= cd.period_s * 1000:
                state[pair] = [t, pm, 0]
                out.append((pair, int(rows[pos]["seq"]), prob, 0))
            elif s[2] < cd.max_realerts and pm > 0 and pm >= s[1] * cd.realert_factor:
                s[1], s[2] = pm, s[2] + 1
                out.append((pair, int(rows[pos]["seq"]), prob, s[2]))
    return out


def _sometimes_nan(low: float, high: float) -> st.SearchStrategy[float]:
    return st.tuples(st.integers(0, 9), st.floats(low, high)).map(lambda t: float("nan") if t[0] == 0 else t[1])


# Ranges straddle the default thresholds so that roughly a quarter of the rows pass every rule.
_row = st.tuples(
    st.integers(0, 2), st.integers(0, 1_500), st.sampled_from([ALL_FLAGS] * 8 + [ROW_BOOK_VALID | ROW_BASELINE_READY, 0]),
    _sometimes_nan(3, 15), st.floats(0, 0.6), st.sampled_from([float("nan"), 0.01, 0.03, 0.05, 0.08, 0.15, 0.3]), st.floats(0, 1), _sometimes_nan(-1, 20), st.floats(0, 0.02),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_row, max_size=40), min_size=1, max_size=4), st.floats(0.0, 0.95), st.sampled_from([60.0, 300.0, 1200.0]))
def test_vectorised_scorer_equals_a_plain_loop(batches_spec: list, threshold: float, cooldown_s: float) -> None:
    config = _cfg(prob_threshold=threshold, period_s=cooldown_s, max_realerts=2, realert_factor=1.2)
    batches, seq = [], 0
    for spec in batches_spec:
        rows = _rows(len(spec))
        for i, (pair, t_s, flags, vsr, vc, pm, obi, depth, spread) in enumerate(spec):
            seq += 1
            rows[i] = (seq, T0 + t_s * 1000, 0, pair, flags, 1.0, vsr, vc, pm, obi, depth, spread, 10_000.0, 0.0, 0.0, 0.0) + (math.nan,) * 7
        batches.append(rows)
    scorer = Scorer(PUMP, config, MODEL)
    got = [(d.pair_id, d.row["seq"], d.prob, d.escalation) for rows in batches for d in scorer.score(rows)]
    want = _reference(batches, config)
    assert [(p, s, e) for p, s, _, e in got] == [(p, s, e) for p, s, _, e in want]
    assert [g[2] for g in got] == pytest.approx([w[2] for w in want])


def _shipped() -> dict[str, Any]:
    return json.loads((REPO / "model.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: m.pop("profile"), "profile"),
        (lambda m: m.update(features=["vsr", "nope"]), "features: unknown feature 'nope'"),
        (lambda m: m.update(features=[]), "features: .* expected a non-empty list"),
        (lambda m: m["weights"].update(vc=1.0), "weights.vc: not in features"),
        (lambda m: m["weights"].pop("obi"), "weights.obi: missing"),
        (lambda m: m["norm"]["vsr"].update(scale=0), "norm.vsr.scale: got 0.0, expected > 0"),
        (lambda m: m["norm"]["vsr"].update(center=float("nan")), "norm.vsr.center: got nan"),
        (lambda m: m["norm"].pop("pm"), "norm.pm: missing"),
        (lambda m: m.update(beta="x"), "beta: got 'x'"),
        (lambda m: m.update(beta0=True), "beta0: got True"),
        (lambda m: m.update(beta_1=1.0), "beta_1: unknown key"),
        (lambda m: m.update(trained=[1]), "trained: got"),
    ],
)
def test_bad_model_files_are_refused_clearly(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = copy.deepcopy(_shipped())
    mutate(data)
    with pytest.raises(ModelError, match=message):
        model_from_dict(data)


def test_unreadable_or_non_json_model_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model"):
        load_model(tmp_path / "missing.json")
    bad = tmp_path / "model.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match=r"model\.json: not valid JSON"):
        load_model(bad)
    bad.write_text(json.dumps({**_shipped(), "beta": None}))
    with pytest.raises(ModelError, match=r"model\.json: beta: got None"):
        load_model(bad)
    bad.write_text("[]")
    with pytest.raises(ModelError, match="expected a JSON object"):
        load_model(bad)


@pytest.mark.parametrize("seed", range(4))
def test_long_random_streams_match_the_plain_loop_including_escalations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    config = _cfg(period_s=120, max_realerts=2, realert_factor=1.3)
    batches, t = [], T0
    for _ in range(30):
        n = int(rng.integers(0, 120))
        rows = _rows(n)
        rows["seq"] += len(batches) * 1000
        rows["pair_id"] = rng.integers(0, 6, n)
        rows["row_time_ms"] = t + rng.integers(0, 20_000, n)
        rows["vsr"] = rng.uniform(3, 12, n)
        rows["pm"] = rng.choice([np.nan, 0.01, 0.03, 0.04, 0.06, 0.09, 0.2], n)
        rows["obi"] = rng.uniform(0, 1, n)
        rows["flags"] = rng.choice([ALL_FLAGS, ALL_FLAGS, ALL_FLAGS, ROW_BOOK_VALID], n)
        batches.append(rows)
        t += 10_000
    scorer = Scorer(PUMP, config, MODEL)
    got = [(d.pair_id, d.row["seq"], d.escalation) for rows in batches for d in scorer.score(rows)]
    want = [(p, s, e) for p, s, _, e in _reference(batches, config)]
    assert got == want
    assert any(e > 0 for *_, e in got) and sum(e == 0 for *_, e in got) > 6  # the stream exercised both paths


# --- reasons print true comparisons ---------------------------------------------------------------

_REASON = re.compile(r"^(?P<label>.+) (?P<v>-?(?:[0-9.]+(?:E[-+][0-9]+)?|inf))(?P<u>%| h| min| s|) (?P<op>[<>≥]) (?P<t>-?[0-9.]+(?:E[-+][0-9]+)?)(?P=u)$")
_CHECK = {">": lambda a, b: a > b, "<": lambda a, b: a < b, "≥": lambda a, b: a >= b}


def _parse(reason: str) -> tuple[Decimal, str, Decimal, str]:
    m = _REASON.match(reason)
    assert m is not None, reason
    return Decimal(m["v"]), m["op"], Decimal(m["t"]), m["u"]


def test_a_value_just_inside_its_threshold_is_printed_with_the_digits_that_make_it_true() -> None:
    """Issue #24: VC 0.4996 printed as "VC 0.50<0.5" read as a false statement."""
    row = dict(vsr=5.04, vc=0.4996, pm=0.020001, obi=0.2500001, cum_depth_delta=1e-9, spread=0.0149999, listing_age_s=900.5)
    reasons = ALPHA1.reasons(row, Alpha1Config(), 0.6000004)
    assert reasons == [
        "Volume vs 6 h median (VSR) 5.04 > 5",
        "Top minute's share of 5-min volume (VC) 0.4996 < 0.5",
        "Price above 5-min VWAP (PM) 2.0001% > 2%",
        "Bid/ask imbalance (OBI) 0.2500001 > 0.25",
        "Bid depth change in 3 min (CumDepthΔ) 1E-9 > 0",  # beyond 1e-8: an exponent, not a row of zeros
        "Spread 1.49999% < 1.5%",
        "Listed for (ListingAge) 0.2501 h > 0.25 h",
        "Score 0.60 ≥ 0.6",  # ≥ holds at the shown digits
    ]


def test_the_model_output_is_called_a_probability_only_when_the_model_was_trained() -> None:
    untrained = Scorer(PUMP, _cfg(), MODEL).score(_rows(1))
    assert untrained[0].model_trained is False and untrained[0].reasons[-1].startswith("Score ")
    data = json.loads((REPO / "model.json").read_text())
    trained_model = model_from_dict({**data, "trained": {"events": 10}})
    trained = Scorer(PUMP, _cfg(), trained_model).score(_rows(1))
    assert trained[0].model_trained is True and trained[0].reasons[-1].startswith("Pump prob ")


@st.composite
def _passing(draw: st.DrawFn, op: str, thresholds: st.SearchStrategy[float]) -> tuple[float, float]:
    """(value, threshold) with value op threshold true in floats: often a few ulps away, the hardest case to print."""
    t = draw(thresholds)
    up = op != "<"
    kind = draw(st.sampled_from(["ulp", "relative", "any"]))
    if kind == "ulp":
        v = t
        for _ in range(draw(st.integers(0 if op == "≥" else 1, 4))):
            v = math.nextafter(v, math.inf if up else -math.inf)
    elif kind == "relative":
        step = max(abs(t), 1e-9) * draw(st.floats(1e-15, 0.2))
        v = t + step if up else t - step
    else:
        v = draw(st.floats(-1e9, 1e9))
    assume(_CHECK[op](v, t) and math.isfinite(v))
    return v, t


_ANY_T = st.floats(-1e6, 1e6) | st.sampled_from([0.0, 0.02, 0.015, 0.1, 0.25, 0.5, 0.6, 0.7, 0.981, 5.0, 1e-7])
_UNIT_T = st.floats(0.0, 1.0) | st.sampled_from([0.0, 0.1, 0.5, 0.6, 0.7, 0.981, 1.0])
_AGE_T = st.sampled_from([0.0, 900.0, 1000.0, 1200.0, 3600.0, 86_400.0, 123.456]) | st.floats(0.0, 1e7)


@settings(max_examples=300, deadline=None)
@given(
    vsr=_passing(">", _ANY_T), vc=_passing("<", _UNIT_T), pm=_passing(">", _ANY_T), obi=_passing(">", _UNIT_T),
    depth=_passing(">", _ANY_T), spread=_passing("<", _ANY_T), age=_passing(">", _AGE_T), prob=_passing("≥", _UNIT_T),
    rush=_passing("≥", _ANY_T), ret=_passing(">", _ANY_T), buy=_passing(">", _UNIT_T), fprob=_passing("≥", _UNIT_T),
    trained=st.booleans(),
)  # fmt: skip
def test_every_printed_reason_is_a_true_comparison_of_a_correctly_rounded_value(**draws: Any) -> None:
    """For random values passing each rule, the printed value compared with the printed threshold satisfies the
    rule, the printed threshold is the configured one, and the printed value is the true value correctly rounded."""
    trained = draws.pop("trained")
    (vsr, vsr_t), (vc, vc_t), (pm, pm_t), (obi, obi_t), (depth, depth_t), (spread, spread_t), (age, age_t), (prob, prob_t) = (
        draws[k] for k in ("vsr", "vc", "pm", "obi", "depth", "spread", "age", "prob"))  # fmt: skip
    (rush, rush_t), (ret, ret_t), (buy, buy_t), (fprob, fprob_t) = (draws[k] for k in ("rush", "ret", "buy", "fprob"))
    c = Alpha1Config(vsr_min=vsr_t, vc_max=vc_t, pm_min=pm_t, obi_min=obi_t, cum_depth_delta_min=depth_t, spread_max=spread_t,
                     listing_age_min_s=age_t, prob_threshold=prob_t)  # fmt: skip
    f = FlashConfig(rush_ratio_min=rush_t, ret_25s_min=ret_t, buy_share_min=buy_t, prob_threshold=fprob_t)
    row = dict(vsr=vsr, vc=vc, pm=pm, obi=obi, cum_depth_delta=depth, spread=spread, listing_age_s=age, rush_ratio_25s=rush,
               trades_ratio_25s=2.0, ret_25s=ret, buy_share_25s=buy)  # fmt: skip
    alpha = ALPHA1.reasons(row, c, prob, trained)
    flash = FLASH.reasons(row, f, fprob, trained)
    expected = [(vsr, vsr_t, 1), (vc, vc_t, 1), (pm, pm_t, 100), (obi, obi_t, 1), (depth, depth_t, 1), (spread, spread_t, 100),
                (age, age_t, None)]  # fmt: skip
    flash_expected = [(rush, rush_t, 1), (ret, ret_t, 100), (buy, buy_t, 100)]
    checked = list(zip(alpha[:-1], expected, strict=True)) + list(zip([flash[0], *flash[2:-1]], flash_expected, strict=True))
    with localcontext(Context(prec=1000)):  # exact arithmetic: the default 28 digits would round long values
        for reason, value, threshold in ((alpha[-1], prob, prob_t), (flash[-1], fprob, fprob_t)):  # the model's line: truncated
            shown, op, shown_t, _ = _parse(reason)
            last_digit = Decimal(1).scaleb(shown.as_tuple().exponent)  # type: ignore[arg-type]
            assert _CHECK[op](shown, shown_t) and shown_t == Decimal(repr(threshold)), reason
            assert shown <= Decimal(repr(value)) < shown + last_digit, reason  # rounded down, never up
        for reason, (value, threshold, scale) in checked:
            shown, op, shown_t, unit = _parse(reason)
            assert _CHECK[op](shown, shown_t), reason
            per = {" h": 3600, " min": 60, " s": 1, "%": 1, "": 1}[unit] if scale is None else 1
            true_v = Decimal(repr(value)) * (scale or 1) / per
            assert shown_t == Decimal(repr(threshold)) * (scale or 1) / per, reason  # the threshold as configured
            last_digit = Decimal(1).scaleb(shown.as_tuple().exponent)  # type: ignore[arg-type]
            assert abs(shown - true_v) <= last_digit / 2 + Decimal("1e-900"), reason  # rounded, not nudged
    assert alpha[-1].startswith("Pump prob " if trained else "Score ") and flash[-1].startswith("Pump prob " if trained else "Score ")
