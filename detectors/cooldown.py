"""The per-pair cooldown with re-alert escalation: one piece, used by every detector's scorer.

A pair alerts once per period_s of exchange time, plus at most max_realerts re-alerts inside
that period when the detector's magnitude (pump: PM) has grown realert_factor times since the
pair's last alert: an escalating move is worth a second card, a flood never is. Exchange time,
not wall time, so a replay gives the same decisions at any speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.detector_config import CooldownConfig


@dataclass
class _PairState:
    last_alert_ms: int  # exchange time of the alert that opened the cooldown
    last_magnitude: float  # magnitude of the pair's newest alert (first or re-alert)
    realerts: int = 0


@dataclass
class Cooldown:
    """Cooldown memory per pair id; the settings come per call, so a reload keeps the memory."""

    state: dict[int, _PairState] = field(default_factory=dict)

    def allow(self, pair_id: int, t_ms: int, magnitude: float, c: CooldownConfig) -> int | None:
        """The escalation number if this pair may alert at t_ms, else None; updates the state."""
        st = self.state.get(pair_id)
        if st is None or t_ms - st.last_alert_ms >= c.period_s * 1000.0:
            self.state[pair_id] = _PairState(t_ms, magnitude)
            return 0
        if st.realerts < c.max_realerts and magnitude > 0 and magnitude >= st.last_magnitude * c.realert_factor:
            st.realerts += 1
            st.last_magnitude = magnitude
            return st.realerts
        return None

    def remember(self, pair_id: int, last_alert_ms: int, last_magnitude: float, realerts: int) -> None:
        """Resume a cooldown a previous run opened (read back from storage at start-up).

        Why: cooldowns live in memory, so without this a restarted service would alert again on a
        move it already announced. Only the newer of the stored and the in-memory cooldown counts.
        """
        current = self.state.get(pair_id)
        if current is None or current.last_alert_ms < last_alert_ms:
            self.state[pair_id] = _PairState(int(last_alert_ms), float(last_magnitude), int(realerts))
