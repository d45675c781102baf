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


def test_plan_times_takes_a_rate_per_model():
    small, big = FakeSpec(3600e9), FakeSpec(3600e9)
    rate = {id(small): 1e9, id(big): 2e9}
    t = planning.plan_times([small, big], seeds=2, rate=lambda s: rate[id(s)], workers=[2])
    assert t["wall_here"] == pytest.approx(2 * (3600 + 1800))
    assert t["wall_on"][2] == pytest.approx(3600 + 1800)


def test_measure_rates_probes_each_shape_once(monkeypatch):
    from icalign import profiles
    calls = []
    monkeypatch.setattr(planning, "measure_flops_per_second",
                        lambda spec, steps, max_batch: calls.append(spec) or 1e9 * len(calls))
    p = profiles.PROFILES["smoke"]
    a = p.train_spec()
    b = p.train_spec(config=p.default_config().replace(n_layer=1))
    rate = planning.measure_rates([a, b, p.train_spec(lr=0.5 * a.lr)])
    assert len(calls) == 2                       # the lr variant shares a's shape
    assert (rate(a), rate(b)) == (1e9, 2e9)
