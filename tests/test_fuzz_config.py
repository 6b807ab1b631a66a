"""Fuzzing the config loader and the /cfg parser: any input gives a Config or a ConfigError, never
another exception and never a change to the config it was given."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import Config, ConfigError, config_from_mapping, load_config, set_value

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["${TG_TOKEN}", "${NOPE}", "${NOPE:-5}", "${X:-}", "1e400", "nan", "0x10", "1_0", "true"]),
)
_keys = st.one_of(
    st.sampled_from(["mexc", "scanner", "detectors", "pump", "profiles", "alpha1", "cooldown", "ws", "telegram", "trading", "metrics", "logging", "storage", "scout"]),
    st.sampled_from(
        ["api_key", "prob_threshold", "vsr_min", "enabled_profiles", "max_streams_per_conn", "allowed_ids", "live", "port", "host", "level"]
    ),
    st.text(max_size=8),
    st.integers(),
    st.booleans(),
    st.none(),
)
_docs = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5), max_leaves=20
)
_env = {"TG_TOKEN": "123:abc", "X": "", "ALLOWED_IDS": "1,2"}


@settings(max_examples=400, deadline=None)
@given(doc=_docs)
def test_any_yaml_document_gives_a_config_or_a_config_error(doc: object) -> None:
    try:
        config = config_from_mapping(doc, environ=_env)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(config, Config)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_any_file_content_gives_a_config_or_a_config_error(tmp_path_factory, text: str | bytes) -> None:
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        load_config(path, environ=_env)
    except ConfigError as exc:
        assert str(exc)


def test_huge_integer_for_a_float_key_is_a_config_error() -> None:
    doc = yaml.safe_load("detectors:\n  pump:\n    profiles:\n      alpha1:\n        prob_threshold: " + "9" * 400 + "\n")
    try:
        config_from_mapping(doc, environ={})
    except ConfigError as exc:
        assert "detectors.pump.profiles.alpha1.prob_threshold" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("accepted a 400-digit probability")


def test_non_string_keys_are_a_config_error_naming_them() -> None:
    for doc in ({1: {}, "scanner": {}}, {"scanner": {1: 2, "ring_rows": 128}}):
        try:
            config_from_mapping(doc, environ={})
        except ConfigError as exc:
            assert "unknown" in str(exc)
        else:  # pragma: no cover
            raise AssertionError(f"accepted {doc!r}")


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"scanner:\n  prob_threshold: \xff\xfe\n")
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        assert "UTF-8" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("accepted a non-UTF-8 file")


_base = config_from_mapping({}, environ={"TG_TOKEN": "123:abc"})
_dotted = st.one_of(
    st.sampled_from([f"{s}.{k}" for s, sec in _base.to_public_dict().items() for k in sec]),
    st.text(max_size=30),
)


@settings(max_examples=1000, deadline=None)
@given(
    key=_dotted,
    text=st.text(max_size=40) | st.sampled_from(["1e400", "nan", "-inf", "9" * 5000, "${TG_TOKEN}", "1,2,x"]),
)
def test_cfg_set_value_never_raises_other_errors_or_mutates(key: str, text: str) -> None:
    before = copy.deepcopy(_base)
    try:
        new = set_value(_base, key, text)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(new, Config)
        # only the named key may differ
        section, _, name = key.partition(".")
        for s, values in new.to_public_dict().items():
            for k, v in values.items():
                if (s, k) != (section, name):
                    assert v == before.to_public_dict()[s][k], (s, k)
    assert _base == before
