"""Every detector the service can run, in one place: its name is its config section detectors.<name>.

Adding a detector is one new module plus one line here (docs/adding-a-detector.md); nothing else
in the scoring path compares names.
"""

from __future__ import annotations

from detectors.base import Detector
from detectors.pump import PUMP

DETECTORS: dict[str, Detector] = {d.name: d for d in (PUMP,)}
