"""The experiment registry, runner and `icalign` CLI on the smoke profile."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import icalign as ica
from icalign import profiles, registry, runner as runner_mod

# subprocesses import the same icalign as this test process (the in-place build
# or the installed package)
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(ica.__file__)))
PANELS = ("tf_vs_gd", "reward_noise", "depth", "attention", "heads", "ffn")


def cli(*args, check=True):
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "icalign.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"icalign {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    proc = cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress",
               "--threads", "1")
    return out / "smoke", proc


def test_reproduce_writes_json_png_report(smoke_run):
    pytest.importorskip("matplotlib")  # the figures need it (extra "plot")
    d, proc = smoke_run
    for name in PANELS:
        data = json.loads((d / f"{name}.json").read_text())
        for key in ("experiment", "profile", "t", "curves", "config", "seeds", "version",
                    "seconds"):
            assert key in data, f"{name}.json lacks {key}"
        assert data["experiment"] == name and data["profile"] == "smoke"
        assert data["t"] == list(range(2, 16))
        for label, ys in data["curves"].items():
            assert len(ys) == 14 and all(isinstance(y, float) for y in ys), label
        png = (d / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    curves = {n: json.loads((d / f"{n}.json").read_text())["curves"] for n in PANELS}
    assert set(curves["tf_vs_gd"]) == {"TF", "GD", "mean", "best", "weighted", "oracle", "optimum"}
    for p in ("0", "0.25", "0.5", "0.75", "1"):
        for m in ("TF", "GD", "mean", "best", "weighted", "oracle"):
            assert f"{m} p={p}" in curves["reward_noise"]
    assert set(curves["depth"]) == {"layers=1", "layers=2"}
    assert set(curves["attention"]) == {"softmax", "linear"}
    assert set(curves["ffn"]) == {"ffn", "no ffn"}
    assert set(curves["heads"]) == {"heads=1 (E=4)", "heads=2 (E=8)", "heads=1 (E=8)"}
    # the default model is trained once and shared by every panel that shows it
    assert curves["tf_vs_gd"]["TF"] == curves["reward_noise"]["TF p=0"] == \
        curves["depth"]["layers=2"] == curves["attention"]["softmax"] == curves["ffn"]["ffn"]
    models = sorted(os.listdir(d / "models"))
    # 6 models of the synthetic panels, the self-critic model of the critic experiments
    # and 3 more of the objectives sweep (its PL-cosine model is the default one)
    assert len(models) == len(registry.plan(profiles.PROFILES["smoke"])) == 10
    assert "[model 10/10]" in proc.stderr and "[experiment 10/10]" in proc.stderr
    noise = json.loads((d / "reward_noise.json").read_text())
    assert noise["gd_steps"] == {"p=0": 50, "p=0.25": 43, "p=0.5": 37, "p=0.75": 31, "p=1": 25}


def test_report_is_computed_from_json(smoke_run, tmp_path):
    d, _ = smoke_run
    report = (d / "report.md").read_text()
    for claim in ("(a) TF approaches GD", "(b) TF error rises with p",
                  "(c) deeper is better", "(d) softmax attention beats linear attention",
                  "(e) more heads help", "(f) removing the FFN hurts",
                  "TF beats the best-rewarded response", "task optimum"):
        assert claim in report
    assert "✓" in report or "✗" in report
    data = json.loads((d / "tf_vs_gd.json").read_text())
    assert f"{data['curves']['TF'][-1]:.3f}" in report
    # edit the numbers in a copy: the rebuilt report follows them (nothing is typed in)
    copy = tmp_path / "smoke"
    copy.mkdir()
    for name in PANELS:
        (copy / f"{name}.json").write_text((d / f"{name}.json").read_text())
    att = json.loads((d / "attention.json").read_text())

    def with_seeds(softmax, linear):
        """The attention result as if trained with three seeds of these errors."""
        out = dict(att, seeds=dict(att["seeds"], training_seeds=[0, 1, 2]))
        out["seed_curves"] = {"softmax": [[v] * 14 for v in softmax],
                              "linear": [[v] * 14 for v in linear]}
        out["curves"] = {"softmax": [sum(softmax) / 3] * 14, "linear": [sum(linear) / 3] * 14}
        return out

    def attention_row(directory):
        cli("report", str(directory), "--no-figures")
        return next(line for line in (copy / "report.md").read_text().splitlines()
                    if "(d) softmax attention" in line)
    (copy / "attention.json").write_text(json.dumps(with_seeds([0.12, 0.123, 0.126],
                                                               [0.98, 0.987, 0.99])))
    row = attention_row(copy)
    assert "softmax: 0.123 ± 0.007" in row and "linear: 0.986 ± 0.013" in row
    assert "paired t test" in row and row.rstrip().endswith("✓ |")
    (copy / "attention.json").write_text(json.dumps(with_seeds([0.5, 0.52, 0.51],
                                                               [0.4, 0.41, 0.4])))
    assert attention_row(copy.parent).rstrip().endswith("✗ |")
    (copy / "attention.json").write_text(json.dumps(with_seeds([0.5, 0.4, 0.45],
                                                               [0.45, 0.5, 0.44])))
    assert attention_row(copy).rstrip().endswith("inconclusive |")


def test_existing_results_need_resume_or_force(smoke_run):
    d, _ = smoke_run
    proc = cli("reproduce", "--profile", "smoke", "--out", str(d.parent), "--only", "a",
               check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr and "--force" in proc.stderr
    before = (d / "tf_vs_gd.json").read_text()
    proc = cli("reproduce", "--profile", "smoke", "--out", str(d.parent), "--only", "a,b",
               "--resume", "--no-progress", "--threads", "1")
    assert "finished earlier, skipped" in proc.stderr
    assert (d / "tf_vs_gd.json").read_text() == before


def test_resume_continues_an_interrupted_model(tmp_path):
    """A half-trained checkpoint (as Ctrl-C leaves it) is resumed, not restarted."""
    profile = profiles.PROFILES["smoke"]
    spec = profile.train_spec()
    runner = runner_mod.Runner("smoke", out=str(tmp_path), resume=True, progress=False,
                       log=lambda m: None)
    model = ica.Transformer(spec.config, seed=spec.seed)
    kwargs = {**spec.train_kwargs(), "steps": spec.steps}
    # train the first step only, with the spec's arguments, by stopping after step 1
    with pytest.raises(KeyboardInterrupt):
        class Stop(ica.AlignmentTask):
            def sample(self, batch_size, seed=0, reward_noise=0.0, offset=0):
                if offset == batch_size:
                    import signal
                    signal.raise_signal(signal.SIGINT)
                return super().sample(batch_size, seed, reward_noise, offset)
        ica.train(model, Stop(profile.n_dims, profile.n_points), progress=False,
                  checkpoint=runner.model_path(spec), **kwargs)
    assert ica.load_checkpoint(runner.model_path(spec))["step"] == 2
    with pytest.raises(RuntimeError, match="not trained"):
        runner.trained_model(spec)           # reading a model never trains it
    [info] = runner.train_models([spec])
    assert info["resumed_from"] == 2 and info["steps_done"] == spec.steps
    trained = runner.trained_model(spec)
    assert len(runner.history(spec)) == spec.steps
    ref = ica.Transformer(spec.config, seed=spec.seed)
    ica.train(ref, profile.task(), progress=False, **kwargs)
    for k, v in ref.state_dict().items():
        assert (trained.state_dict()[k] == v).all()


def test_unknown_names_and_registry_errors():
    proc = cli("reproduce", "--profile", "smoke", "--only", "a,bogus", check=False)
    assert proc.returncode == 2
    assert "bogus" in proc.stderr and "tf_vs_gd (a)" in proc.stderr and "ffn (f)" in proc.stderr
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        runner_mod.Runner("huge")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.Experiment("depth", "again", run=lambda r: {}))
    assert registry.resolve(["c", "a"]) == ["tf_vs_gd", "depth"]
    assert cli("--help").stdout.count("reproduce") >= 1


def test_registered_extension_runs_and_reports(tmp_path):
    """The extension point every experiment family uses."""
    def run(runner):
        model = runner.trained_model(runner.profile.train_spec())
        err = runner.curves(model, 0.5, baselines=())["TF"]
        return {"rounds": [0, 1, 2], "curves": {"TF at p=0.5": err[:3]},
                "extra_setting": runner.profile.extra.get("x")}

    def claims(results):
        r = results["ext_demo"]
        return [registry.Claim("Extension", "demo claim", f"{r['curves']['TF at p=0.5'][-1]:.3f}",
                         True, "always")]
    registry.register(registry.Experiment("ext_demo", "demo", run=run,
                              models=lambda p: [p.train_spec()], claims=claims,
                              group="critic", x_key="rounds"))
    try:
        res = runner_mod.Runner("smoke", out=str(tmp_path), progress=False,
                        log=lambda m: None).run(["ext_demo"])
        assert "TF at p=0.5" in res["ext_demo"]["curves"] and "t" not in res["ext_demo"]
        report = (tmp_path / "smoke" / "report.md").read_text()
        assert "### Extension" in report and "demo claim" in report
        assert "| | round=0 | round=1 | round=2 |" in report
        # the default model was trained by this experiment and is cached for the others
        assert os.listdir(tmp_path / "smoke" / "models") == \
            [profiles.PROFILES["smoke"].train_spec().name + ".npz"]
    finally:
        registry.unregister("ext_demo")


def test_profiles_are_consistent():
    paper = profiles.PROFILES["paper"]
    assert (paper.n_embd, paper.n_layer, paper.n_head, paper.batch_size, paper.steps,
            paper.lr, paper.lr_schedule) == (96, 20, 3, 256, 3000, 1e-4, None)
    assert paper.depths == (5, 10, 15, 20) and paper.heads == (1, 3, 4, 6)
    specs = registry.plan(paper)
    # 4 depths + linear + 3 heads at head size 32 + 3 at E=96 + no ffn, default shared,
    # + the self-critic model (default config with a reward head)
    # + the default config trained on 3 more objectives (PL-cosine is the default model)
    assert len(specs) == 16
    published = [s for s in specs if (s.objective, s.reward) == ("pl", "cosine")]
    assert sorted(s.config.n_embd for s in published if s.config.n_layer == 20 and s.config.ffn
                  and not s.config.reward_head
                  and s.config.softmax) == [32, 96, 96, 96, 96, 128, 192]
    assert sorted((s.objective, s.reward) for s in specs if s.config == paper.default_config()) \
        == [("bt", "cosine"), ("bt", "neg_sq"), ("pl", "cosine"), ("pl", "neg_sq")]
    quick = profiles.PROFILES["quick"]
    assert len(quick.depths) == 4 and len(quick.heads) == 4
    with pytest.raises(ValueError, match="largest of depths"):
        profiles.Profile("bad", "x", n_layer=3, depths=(1, 2))
    # the flop estimate: dense part of one layer of E=96 with FFN dominates
    cfg = ica.ModelConfig(n_embd=96, n_layer=1)
    dense = 6 * 12 * 96 * 96 * 60
    assert profiles.train_flops_per_step(cfg, 1) == pytest.approx(dense + 12 * 3600 * 96)


def test_runs_without_matplotlib(tmp_path):
    """matplotlib is optional: the package imports and reproduce writes JSON and
    report.md, saying how to install it for the figures."""
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        "            raise ImportError('matplotlib blocked for this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import icalign, icalign.experiments\n"
        "from icalign import cli\n"
        f"sys.exit(cli.main(['reproduce', '--profile', 'smoke', '--only', 'a', '--out', "
        f"{str(tmp_path)!r}, '--no-progress', '--threads', '1']))\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "icalign[plot]"' in proc.stderr and 'pip install ".[plot]"' in proc.stderr
    d = tmp_path / "smoke"
    assert (d / "tf_vs_gd.json").exists() and (d / "report.md").exists()
    assert not (d / "tf_vs_gd.png").exists()


def test_diverging_model_is_reported_not_fatal(tmp_path, monkeypatch):
    """A model whose loss turns non-finite keeps its last finite state and is
    marked in the JSON and report; the other experiments still run."""
    real_step = ica.Transformer.step

    def step(self, *args, **kwargs):
        if not self.config.softmax and self._core.adam_steps >= 1:
            raise FloatingPointError("the loss is not finite (nan)")
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(ica.Transformer, "step", step)
    res = runner_mod.Runner("smoke", out=str(tmp_path), progress=False,
                    log=lambda m: None).run(["attention"])
    info = res["attention"]["models"]
    assert info["linear"]["diverged_at_step"] == 1 and info["softmax"]["diverged_at_step"] is None
    assert all(np.isfinite(res["attention"]["curves"]["linear"]))
    report = (tmp_path / "smoke" / "report.md").read_text()
    assert "**Diverged in training** (evaluated at the last finite state): linear (at step 1)" \
        in report
