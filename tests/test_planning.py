"""Time estimates of ``icalign plan``: model-hours and wall time on W workers."""
import pytest

from icalign import planning


class FakeSpec:
    def __init__(self, flops):
        self._flops = flops

    def flops(self):
        return self._flops


def test_plan_times_counts_every_seed():
    specs = [FakeSpec(3600e9), FakeSpec(1800e9)]
    t = planning.plan_times(specs, seeds=3, rate=1e9, workers=[1, 3, 100])
    assert t["trainings"] == 6
    assert t["model_hours"] == pytest.approx(4.5)
    assert t["wall_here"] == pytest.approx(4.5 * 3600)
    assert t["wall_on"][1] == pytest.approx(4.5 * 3600)
    assert t["wall_on"][3] == pytest.approx(5400)        # one big + one small each
    assert t["wall_on"][100] == pytest.approx(3600)      # bounded by the longest training
    with pytest.raises(ValueError):
        planning.plan_times(specs, 1, 0.0)
