"""Several training seeds: merging per-seed payloads and the claim helpers."""
import numpy as np
import pytest

import icalign as ica
from icalign import seeds, stats

T = [2, 5, 10, 15]


def payload(k, tf_shift):
    return {"curves": {"TF": [0.8 - 0.1 * i + tf_shift for i in range(4)],
                       "GD": [0.7, 0.5, 0.4, 0.3]},
            "models": {"TF": {"name": f"m{k}", "final_loss": 1.0 + k}},
            "gd_steps": 50, "note": "same", "loss": float(k)}


SE = {"GD": {"se": [0.01, 0.008, 0.006, 0.004], "n_tasks": 5000}}


def merged(shifts=(0.0, 0.02, -0.01)):
    res = seeds.merge_seed_payloads([payload(k, s) for k, s in enumerate(shifts)], SE)
    res.update(t=T, x_key="t")
    return res


def test_merge_keeps_every_seed_and_adds_intervals():
    res = merged()
    assert res["seed_curves"]["TF"][1] == payload(1, 0.02)["curves"]["TF"]
    np.testing.assert_allclose(res["curves"]["TF"],
                               np.mean([payload(k, s)["curves"]["TF"]
                                        for k, s in enumerate((0.0, 0.02, -0.01))], axis=0))
    u = res["uncertainty"]["TF"]
    assert u["kind"] == "seeds" and u["n"] == 3 and len(u["lo"]) == 4
    ci = stats.mean_ci([0.5, 0.52, 0.49])
    assert u["lo"][3] == pytest.approx(ci["lo"]) and u["hi"][3] == pytest.approx(ci["hi"])
    g = res["uncertainty"]["GD"]
    assert g["kind"] == "tasks" and g["n"] == 5000 and "GD" not in res["seed_curves"]
    assert g["hi"][0] == pytest.approx(0.7 + seeds.Z95 * 0.01)
    assert res["models"]["TF"]["name"] == "m0"
    assert [m["name"] for m in res["seed_models"]["TF"]] == ["m0", "m1", "m2"]
    assert res["per_seed"] == {"loss": [0.0, 1.0, 2.0]} and res["note"] == "same"


def test_one_seed_keeps_the_curve_and_says_so():
    one = seeds.merge_seed_payloads([payload(0, 0.0)], SE)
    assert one["curves"]["TF"] == payload(0, 0.0)["curves"]["TF"]
    assert one["uncertainty"]["TF"]["note"] == "one seed"
    assert one["uncertainty"]["TF"]["lo"] is None and "per_seed" not in one


def test_required_evaluation_tasks_meet_the_target():
    n = stats.tasks_for_standard_error(seeds.WORST_TASK_SD_T15, seeds.TARGET_SE_T15)
    assert n == 3844 and n <= 5000


def test_compare_against_a_baseline_and_between_seeded_curves():
    res = merged()
    v = seeds.compare(res, "TF", "GD", at=15)          # TF 0.503 vs GD 0.3: TF worse
    assert v["verdict"] == "opposite" and v["effect"] == pytest.approx(0.2033, abs=1e-3)
    assert v["lo"] < v["effect"] < v["hi"]
    w = seeds.compare(res, "GD", "TF", at=15)
    assert w["verdict"] == "holds" and w["effect"] == pytest.approx(-v["effect"])
    assert w["lo"] == pytest.approx(-v["hi"]) and w["hi"] == pytest.approx(-v["lo"])
    res["seed_curves"]["TF2"] = [[y - 0.05 for y in c] for c in res["seed_curves"]["TF"]]
    res["curves"]["TF2"] = [y - 0.05 for y in res["curves"]["TF"]]
    assert seeds.compare(res, "TF2", "TF")["verdict"] == "holds"   # constant shift: exact


def test_within_and_trend():
    res = merged()
    assert seeds.within(res, "GD", 0.2, 0.4, at=15)["verdict"] == "holds"
    assert seeds.within(res, "GD", 0.5, 0.6, at=15)["verdict"] == "opposite"
    assert seeds.within(res, "TF", 0.49, 0.515, at=15)["verdict"] == "inconclusive"
    # TF falls with t in every seed
    res2 = dict(res, x_key="t")
    for i, lab in enumerate(["a", "b", "c"]):
        res2["seed_curves"] = dict(res2["seed_curves"])
        res2["seed_curves"][lab] = [[0.5 - 0.05 * i + s] * 4 for s in (0.0, 0.013, -0.02)]
    assert seeds.trend(res2, ["a", "b", "c"])["verdict"] == "holds"
    assert seeds.trend(res2, ["a", "b", "c"], expect="positive")["verdict"] == "opposite"
    g = seeds.trend(res, ["GD"] * 1 + ["GD"], x=[0, 1])
    assert g["verdict"] == "inconclusive"


def test_one_seed_claims_are_inconclusive():
    one = seeds.merge_seed_payloads([payload(0, 0.0)], SE)
    one.update(t=T, x_key="t")
    v = seeds.compare(one, "TF", "GD", at=15)
    assert v["verdict"] == "inconclusive" and "one seed" in v["text"]


def test_training_seeds():
    assert seeds.training_seeds(0, 3) == [0, 1, 2]
    with pytest.raises(ValueError):
        seeds.training_seeds(0, 0)


def test_seed_sets_initialisation_and_task_stream():
    cfg = ica.ModelConfig(n_dims=5, n_points=20, n_embd=8, n_layer=1, n_head=2)
    task = ica.AlignmentTask(5, 20)

    def trained(seed):
        m = ica.Transformer(cfg, seed=seed)
        ica.train(m, task, steps=3, batch_size=4, lr=1e-3, seed=seed, progress=False)
        return m.state_dict()
    a, b, c = trained(0), trained(0), trained(1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    init0, init1 = ica.Transformer(cfg, seed=0).state_dict(), ica.Transformer(cfg, seed=1).state_dict()
    assert not all(np.array_equal(init0[k], init1[k]) for k in init0)
    assert not np.array_equal(task.sample(4, seed=0).xs, task.sample(4, seed=1).xs)


def test_profiles_evaluate_enough_tasks_for_the_target_standard_error():
    from icalign.profiles import PROFILES
    need = stats.tasks_for_standard_error(seeds.WORST_TASK_SD_T15, seeds.TARGET_SE_T15)
    for name in ("quick", "paper"):
        assert PROFILES[name].eval_size >= need, name


def test_widest_baseline_spread_at_t15_is_the_stated_one():
    """The per-task spread behind the evaluation task count, measured on 2000 tasks."""
    from icalign.baselines import SIMPLE_BASELINES
    batch = ica.evaluation_set(ica.AlignmentTask(5, 20), 2000)
    sds = {name: float(ica.normalized_error(ica.simple_baseline(name, batch, [15]),
                                            batch.ystar)[:, 0].std(ddof=1))
           for name in SIMPLE_BASELINES}
    assert max(sds, key=sds.get) == "mean"
    assert abs(sds["mean"] - seeds.WORST_TASK_SD_T15) < 0.02
