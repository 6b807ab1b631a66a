"""The registry, the config schema and the model files agree for every detector and profile, so a
new detector that forgets one of them (docs/adding-a-detector.md) fails here, not at run time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from common.config import config_from_mapping, set_value
from common.detector_config import DetectorsConfig
from detectors.base import Detector
from detectors.model import ModelError
from detectors.registry import DETECTORS

REPO = Path(__file__).resolve().parent.parent


def test_every_config_section_has_a_registered_detector_and_back() -> None:
    assert set(DETECTORS) == {f.name for f in dataclasses.fields(DetectorsConfig)}


@pytest.mark.parametrize("detector", list(DETECTORS.values()), ids=list(DETECTORS))
def test_each_profile_has_its_settings_its_shipped_model_and_a_cfg_path(detector: Detector) -> None:
    config = config_from_mapping({}, environ={})
    section = detector.section(config.detectors)
    names = [p.name for p in detector.profiles]
    assert names == [f.name for f in dataclasses.fields(section.profiles)]
    assert set(section.enabled_profiles) <= set(names)
    every = dataclasses.replace(section, enabled_profiles=names)
    models = detector.load_models(every, REPO)  # the shipped model file of every profile loads
    assert {name: m.profile for name, m in models.items()} == {name: name for name in names}
    for name in names:
        settings = detector.settings(section, name)
        assert 0.0 <= settings.prob_threshold <= 1.0
        changed = set_value(config, f"detectors.{detector.name}.profiles.{name}.prob_threshold", "0.5")
        assert detector.settings(detector.section(changed.detectors), name).prob_threshold == 0.5


def test_a_model_file_of_another_profile_is_refused(tmp_path: Path) -> None:
    detector = DETECTORS["pump"]
    section = dataclasses.replace(detector.section(DetectorsConfig()), enabled_profiles=["flash"])
    (tmp_path / "model.flash.json").write_text((REPO / "model.json").read_text())
    with pytest.raises(ModelError, match="profile 'alpha1', expected 'flash'"):
        detector.load_models(section, tmp_path)
