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


def test_rates_from_tables_average_the_workers_that_measured_a_shape():
    from icalign import profiles
    p = profiles.PROFILES["smoke"]
    a = p.train_spec()
    b = p.train_spec(config=p.default_config().replace(n_layer=1))
    ka, kb = planning.shape_key(a), planning.shape_key(b)
    rate = planning.rates_from_tables([{ka: 1e9, kb: 4e9}, {ka: 3e9}])
    assert (rate(a), rate(b)) == (2e9, 4e9)      # b measured by one worker only
    with pytest.raises(KeyError):
        planning.rates_from_tables([{ka: 1e9}])(b)


def test_runner_estimates_at_the_probed_rates(tmp_path, monkeypatch):
    """A run long enough to probe logs its estimates at the probed rate of each model,
    then corrected by the measured seconds of the models done."""
    from icalign import executors
    from icalign import runner as runner_mod
    probed = []
    monkeypatch.setattr(runner_mod, "PROBE_ABOVE_SECONDS", 0.0)
    # the default (serial) executor probes through planning.measure_rates
    monkeypatch.setattr(executors, "measure_rates",
                        lambda specs: probed.extend(specs) or (lambda spec: 1e6))
    lines = []
    r = runner_mod.Runner("smoke", out=str(tmp_path), progress=False, log=lines.append)
    r.run(["depth"])
    assert len(probed) == 2
    text = "\n".join(lines)
    assert "probed the training rate of 2 model shape(s)" in text
    assert "(0.001 GFLOP/s)" in text and "as measured so far" in text
