"""The runner behind ``icalign reproduce``: runs experiments of one profile into
``out/<profile>/`` in two phases.

1. **Train.** The TrainSpecs the selected experiments declare (``Experiment.models``)
   are planned; those without a finished checkpoint are trained through an executor:
   any object with ``map(fn, iterable)`` like ``concurrent.futures.Executor.map``
   (default: ``SerialExecutor``, in this process). The function mapped is
   ``train_spec``, a top-level function of picklable arguments, so a process pool
   or a cluster can run it (a ``ProcessPoolExecutor`` needs the "spawn" start method:
   a child forked from a process that already ran OpenMP code can hang).
2. **Run.** Each experiment's ``run(runner)`` loads its trained models
   (``runner.trained_model(spec)``, never training) and returns its JSON payload;
   the runner writes ``<name>.json``, then the figures and report.md
   (``icalign.report.build_outputs``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from typing import Iterable, Optional

import numpy as np

from ._files import atomic_write_text
from ._version import __version__
from .baselines import DEFAULT_T, SIMPLE_BASELINES
from .evaluate import EVAL_SEED_BASE, evaluation_set, task_errors
from .executors import SerialExecutor
from .manifest import PhaseTimer, experiment_timing, run_manifest, utc_now, write_manifest
from .model import Transformer
from .planning import measure_rates, plan_times, shape_key
from .profiles import PROFILES, Profile, TrainSpec, assumed_flops_per_second, format_seconds
from .registry import EXPERIMENTS, load_builtin_experiments, plan, resolve
from .report import build_outputs, load_result
from .seeds import merge_seed_payloads, training_seeds
from .stats import task_standard_error
from .task import AlignmentTask, TaskBatch
from .tasks import checkpoint_path, train_spec
from .training import history_from_checkpoint, load_checkpoint, model_from_checkpoint

BASELINE_LABELS = ("GD",) + SIMPLE_BASELINES


# Trainings expected to take longer than this (at the assumed rate) first probe the
# rate of each model shape on this machine (a few seconds), so that the estimates
# the runner logs are this machine's; shorter runs (smoke) skip the probe.
PROBE_ABOVE_SECONDS = 60.0


class Runner:
    """Runs experiments of one profile into ``out/<profile>/``.

    resume: continue interrupted model checkpoints and skip experiments whose
        JSON is complete and made with the same profile settings.
    force: delete earlier results of the selected experiments and their models.
    Without either, an output directory that already holds results for the
    selected experiments is refused (nothing is overwritten by accident).
    executor: trains the missing models (``map(fn, iterable)``); default
        ``SerialExecutor()``; ``icalign.executors.ProcessExecutor`` trains them in
        local worker processes side by side (what ``icalign reproduce`` does by
        default), ``icalign.executors.DaskExecutor`` on a Dask cluster whose workers
        share the output folder.
    seeds: K independent training seeds ``train_seed + k`` (k < K) for every model;
        each experiment runs once per seed on the same evaluation tasks and its JSON
        keeps every seed's curve with the mean and a 95 % interval across seeds
        (``icalign.seeds.merge_seed_payloads``).
    """

    def __init__(self, profile, out: str = "results", resume: bool = False,
                 force: bool = False, progress: bool = True, log=None, executor=None,
                 seeds: int = 1):
        load_builtin_experiments()  # their settings are part of every profile
        if isinstance(profile, str):
            if profile not in PROFILES:
                raise ValueError(f"unknown profile {profile!r}; expected one of "
                                 f"{sorted(PROFILES)}")
            profile = PROFILES[profile]
        if resume and force:
            raise ValueError("resume and force exclude each other")
        self.profile: Profile = profile
        self.base_profile: Profile = profile
        self.training_seeds = training_seeds(profile.train_seed, seeds)
        self.dir = os.path.join(os.fspath(out), profile.name)
        self.models_dir = os.path.join(self.dir, "models")
        self.resume, self.force, self.progress = resume, force, progress
        self.executor = executor if executor is not None else SerialExecutor()
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._models: dict[str, Transformer] = {}
        self._histories: dict[str, object] = {}
        self._diverged: dict[str, int] = {}
        self._eval: dict[float, TaskBatch] = {}
        self._baseline_cache: dict[tuple, tuple] = {}
        self._task_se: dict[str, dict] = {}   # of the curves of the current seed
        self._folder_checked = False
        self._plan: list[TrainSpec] = []
        self._unbilled: dict[str, float] = {}   # training seconds not yet in a result
        self._rate = None   # FLOP/s of a spec on this machine, probed before training
        self._t0 = time.monotonic()
        self.timer = PhaseTimer()   # evaluation time per part (icalign.manifest)

    # ------------------------------------------------------------------ helpers
    def log(self, msg: str) -> None:
        self._log(msg)

    @property
    def task(self) -> AlignmentTask:
        return self.profile.task()

    def model_path(self, spec: TrainSpec) -> str:
        return checkpoint_path(self.models_dir, spec)

    def json_path(self, name: str) -> str:
        return os.path.join(self.dir, name + ".json")

    def eval_batch(self, reward_noise: float = 0.0) -> TaskBatch:
        """The profile's fixed evaluation set at reward noise p (same true
        tasks at every p; seeds >= EVAL_SEED_BASE, never used for training)."""
        p = float(reward_noise)
        if p not in self._eval:
            self._eval[p] = evaluation_set(self.task, self.profile.eval_size,
                                           seed=self.profile.eval_seed, reward_noise=p)
        return self._eval[p]

    def seeds(self) -> dict:
        """The seeds of the results: training and initialisation (the first of the
        run's training seeds; all of them under "training_seeds" when there are
        several), evaluation tasks and GD."""
        out = {"train": self.base_profile.train_seed,
               "eval": EVAL_SEED_BASE + self.base_profile.eval_seed,
               "gd": self.base_profile.gd_seed, "model_init": self.base_profile.train_seed}
        if len(self.training_seeds) > 1:
            out["training_seeds"] = list(self.training_seeds)
        return out

    def seed_profiles(self) -> list:
        """The profile once per training seed (``train_seed`` set to that seed)."""
        return [self.base_profile if s == self.base_profile.train_seed
                else dataclasses.replace(self.base_profile, train_seed=s)
                for s in self.training_seeds]

    def plan(self, names) -> list:
        """The distinct (model, seed) trainings of the selected experiments."""
        seen, out = set(), []
        for prof in self.seed_profiles():
            for spec in plan(prof, names):
                if spec.name not in seen:
                    seen.add(spec.name)
                    out.append(spec)
        return out

    # ------------------------------------------------------------------ phase 1: train
    def _finished_on_disk(self, spec: TrainSpec) -> bool:
        path = self.model_path(spec)
        if not os.path.exists(path):
            return False
        try:
            return load_checkpoint(path)["step"] >= spec.steps
        except ValueError:
            return False

    def _tag(self, spec: TrainSpec) -> str:
        names = [s.name for s in self._plan]
        return (f"[model {names.index(spec.name) + 1}/{len(names)}]" if spec.name in names
                else "[model]")

    def _rate_of(self, spec: TrainSpec) -> float:
        return self._rate(spec) if self._rate else assumed_flops_per_second()

    def _rate_text(self) -> str:
        return ("at the rate probed here" if self._rate else
                f"at the assumed {assumed_flops_per_second() / 1e9:.0f} GFLOP/s")

    def _probe(self, specs: list) -> None:
        """Times two training steps of every distinct model shape in ``specs``
        (``planning.measure_rates``), so estimates use this machine's rate for each;
        an executor with its own ``measure_rates`` measures on its workers, side by
        side, as they will train."""
        t0 = time.monotonic()
        self._rate = getattr(self.executor, "measure_rates", measure_rates)(specs)
        shapes = len({shape_key(s) for s in specs})
        self.log(f"icalign: probed the training rate of {shapes} model shape(s) in "
                 f"{format_seconds(time.monotonic() - t0)}")

    def _announce(self, spec: TrainSpec) -> TrainSpec:
        model_params = Transformer(spec.config, seed=spec.seed).num_parameters
        # other executors take every model at once and start them as workers free up
        what = "training" if isinstance(self.executor, SerialExecutor) else "queued"
        self.log(f"{self._tag(spec)} {what} {spec.name}: {model_params:,} parameters, "
                 f"{spec.steps} steps x batch {spec.batch_size}; estimate "
                 f"{format_seconds(spec.flops() / self._rate_of(spec))} "
                 f"({self._rate_of(spec) / 1e9:.3g} GFLOP/s)")
        return spec

    def train_models(self, specs: Iterable[TrainSpec]) -> list[dict]:
        """Train every spec without a finished checkpoint through the executor; logs
        each model's start and end and the overall progress and time left. Returns
        ``train_spec``'s dicts of the models trained now."""
        specs = list(specs)
        for spec in specs:
            if not isinstance(spec, TrainSpec):
                raise TypeError(f"spec must be a TrainSpec (see Profile.train_spec), got "
                                f"{type(spec).__name__}")
        missing = [s for s in specs if not self._finished_on_disk(s)]
        for s in specs:
            if s not in missing:
                self.log(f"{self._tag(s)} loaded finished {s.name}")
        if not missing:
            return []
        os.makedirs(self.models_dir, exist_ok=True)
        local = isinstance(self.executor, SerialExecutor)
        self._check_shared_folder()
        fn = functools.partial(train_spec, models_dir=os.path.abspath(self.models_dir),
                               checkpoint_every=self.profile.checkpoint_every,
                               progress=self.progress and local)
        # estimates in seconds at each model's rate, corrected by the ratio of measured
        # to estimated seconds of the models done so far
        left = sum(s.flops() / self._rate_of(s) for s in missing)
        estimated_done, seconds_done, done = 0.0, 0.0, []
        by_name = {s.name: s for s in missing}
        # results as the models finish, where the executor can (the bookkeeping below
        # goes by name): the time left shown then counts the models really done
        mapper = getattr(self.executor, "imap_unordered", self.executor.map)
        for info in mapper(fn, (self._announce(s) for s in missing)):
            spec = by_name[info["name"]]
            done.append(info)
            self._unbilled[spec.name] = info["seconds"]
            left -= spec.flops() / self._rate_of(spec)
            if info["diverged_at_step"] is not None:
                self._diverged[spec.name] = info["diverged_at_step"]
                self.log(f"{self._tag(spec)} WARNING: {info['message']}")
                continue
            estimated_done += spec.flops() / self._rate_of(spec) * \
                (1 - info["resumed_from"] / max(spec.steps, 1))
            seconds_done += info["seconds"]
            self.log(f"{self._tag(spec)} done in {format_seconds(info['seconds'])}, final "
                     f"loss {info['final_loss']:.4f} (mean of last 20 steps)"
                     + self._overall_eta(len(done), len(missing), left, estimated_done,
                                         seconds_done))
        return done

    def _overall_eta(self, n_done, n_missing, left, estimated_done, seconds_done) -> str:
        # seconds are summed over the executor's workers, which train side by side
        workers = max(1, int(getattr(self.executor, "workers", 1) or 1))
        if estimated_done > 0 and seconds_done > 0:
            factor = seconds_done / estimated_done
            how = f"{self._rate_text()}, x{factor:.2f} as measured so far"
        else:
            factor, how = 1.0, self._rate_text()
        if workers > 1:
            how += f", on {workers} workers"
        ready = len(self._plan) - n_missing + n_done if self._plan else n_done
        return (f"; overall {ready}/{len(self._plan) or n_missing} models ready, "
                f"{format_seconds(time.monotonic() - self._t0)} elapsed, ~"
                f"{format_seconds(left * factor / workers)} of training left ({how})")

    # ------------------------------------------------------------------ phase 2: models
    def trained_model(self, spec: TrainSpec) -> Transformer:
        """The trained model of ``spec``, loaded from its checkpoint (cached in memory).
        Never trains: raises ``RuntimeError`` for a model that is not trained yet
        (declare it in ``Experiment.models``, or call ``train_models`` first)."""
        if not isinstance(spec, TrainSpec):
            raise TypeError(f"spec must be a TrainSpec (see Profile.train_spec), got "
                            f"{type(spec).__name__}")
        if spec.name not in self._models:
            path = self.model_path(spec)
            ck = load_checkpoint(path) if os.path.exists(path) else None
            if ck is None or (ck["step"] < spec.steps and spec.name not in self._diverged):
                raise RuntimeError(f"model {spec.name} is not trained in {self.models_dir}; "
                                   f"an experiment must declare the models it uses in "
                                   f"Experiment.models (or call Runner.train_models)")
            self._models[spec.name] = model_from_checkpoint(ck)
            self._histories[spec.name] = history_from_checkpoint(ck)
        return self._models[spec.name]

    def history(self, spec: TrainSpec):
        """The training history of a trained model (loaded, never trained)."""
        self.trained_model(spec)
        return self._histories[spec.name]

    def model_info(self, spec: TrainSpec) -> dict:
        """JSON description of a trained model: spec, checkpoint, loss, time."""
        h = self.history(spec)
        return {"name": spec.name, "checkpoint": os.path.relpath(self.model_path(spec), self.dir),
                "spec": spec.to_dict(), "parameters": self._models[spec.name].num_parameters,
                "final_loss": float(np.mean(h.losses[-20:])) if len(h) else None,
                "train_seconds": h.seconds,
                "diverged_at_step": self._diverged.get(spec.name)}

    def task_curve(self, label: str, errors, trained: bool) -> list:
        """The curve ``label`` of an experiment's payload from per-task errors.

        Parameters
        ----------
        label : str
            The curve's label in the payload's ``curves``.
        errors : array_like, shape (n_tasks, n_x)
            Its error on each evaluation task (finite, n_tasks >= 2).
        trained : bool
            True for a trained model's curve, which changes with the training seed;
            False for one that is the same for every seed (a baseline, the task
            optimum).

        Returns
        -------
        list of float
            The mean over tasks at each x. Its standard error over the evaluation
            tasks is kept for the result: a curve with ``trained=False`` is reported
            with it (mean +- 1.96 se), a trained model's curve with the interval
            across seeds and this standard error beside it. Curves put in a payload
            without this method count as trained.
        """
        errors = np.asarray(errors)
        se = task_standard_error(errors)
        self._task_se[label] = {"se": se["se"], "n_tasks": se["n_tasks"],
                                "kind": "model" if trained else "baseline"}
        return errors.mean(axis=0).tolist()

    def curves(self, model: Optional[Transformer] = None, reward_noise: float = 0.0,
               baselines: Iterable[str] = BASELINE_LABELS, suffix: str = "",
               gd_steps: Optional[int] = None, tf_label: str = "TF") -> dict:
        """``evaluate.error_curves`` on the profile's evaluation set at reward noise p,
        for ``model`` (label ``tf_label``) and each baseline, with the profile's GD
        settings; ``suffix`` is appended to every label (e.g. ' p=0.5')."""
        baselines = tuple(baselines)
        for name in baselines:
            if name not in BASELINE_LABELS:
                raise ValueError(f"unknown baseline {name!r}; expected one of "
                                 f"{BASELINE_LABELS}")
        steps = self.profile.gd_steps_at(reward_noise) if gd_steps is None else gd_steps
        batch = self.eval_batch(reward_noise)
        out = {}
        if model is not None:
            with self.timer("tf_eval"):
                errors = task_errors(batch, model, DEFAULT_T, ())
            out[tf_label + suffix] = self.task_curve(tf_label + suffix, errors["TF"],
                                                     trained=True)
        for name in baselines:
            # a baseline does not depend on the training seed: computed once per run
            key = (name, float(reward_noise), int(steps) if name == "GD" else None)
            if key not in self._baseline_cache:
                with self.timer("gd" if name == "GD" else "baselines"):
                    self._baseline_cache[key] = task_errors(
                        batch, None, DEFAULT_T, (name,), gd_steps=steps,
                        gd_lr=self.profile.gd_lr, seed=self.profile.gd_seed)[name]
            out[name + suffix] = self.task_curve(name + suffix, self._baseline_cache[key],
                                                 trained=False)
        return out

    # ------------------------------------------------------------------ running
    def _is_complete(self, name: str) -> bool:
        path = self.json_path(name)
        if not os.path.exists(path):
            return False
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return False
        return data.get("fingerprint") == self.fingerprint(name)

    def fingerprint(self, name: str) -> str:
        """The fingerprint of experiment ``name``'s results under this profile (and the
        training seeds, when there are several)."""
        fp = self.base_profile.fingerprint(name, EXPERIMENTS[name].settings_key)
        if len(self.training_seeds) == 1:
            return fp
        key = json.dumps([fp, self.training_seeds]).encode()
        return hashlib.sha1(key).hexdigest()[:16]

    def _existing_outputs(self, names: list) -> list:
        found = [self.json_path(n) for n in names if os.path.exists(self.json_path(n))]
        found += [self.model_path(s) for s in self._plan if os.path.exists(self.model_path(s))]
        return found

    def _prepare(self, selected: list) -> None:
        existing = self._existing_outputs(selected)
        if existing and not (self.resume or self.force):
            shown = ", ".join(os.path.relpath(p, self.dir) for p in existing[:4])
            more = f" and {len(existing) - 4} more" if len(existing) > 4 else ""
            raise FileExistsError(
                f"{self.dir} already holds results of these experiments ({shown}{more}); pass "
                f"--resume (resume=True) to continue them, --force (force=True) to start over, "
                f"or choose another --out directory")
        if self.force:
            for p in existing:
                os.remove(p)
        os.makedirs(self.models_dir, exist_ok=True)

    def _run_one(self, name: str, runs: Optional[list] = None) -> dict:
        exp = EXPERIMENTS[name]
        t0 = time.monotonic()
        runs = self._run_seeds(exp) if runs is None else runs
        payload = self._merge(runs)
        result = {"experiment": name, "title": exp.title, "group": exp.group,
                  "profile": self.profile.name, "x_key": exp.x_key}
        if exp.x_key == "t":
            result["t"] = list(DEFAULT_T)
        result.update(payload)
        if exp.note:
            result["note"] = exp.note
        result.setdefault("config", self.profile.default_config().to_dict())
        # an experiment's time includes the training of the models it is the first to use
        trained_here = sum(self._unbilled.pop(s.name, 0.0) for prof in self.seed_profiles()
                           for s in exp.models(prof))
        result.update({"profile_settings": self.profile.to_dict(), "seeds": self.seeds(),
                       "version": __version__,
                       "seconds": time.monotonic() - t0 + trained_here
                       + sum(run[2] for run in runs),
                       "timing": experiment_timing((run[3] for run in runs),
                                                   sum(run[3]["seconds"] for run in runs)),
                       "fingerprint": self.fingerprint(name)})
        atomic_write_text(self.json_path(name), json.dumps(result, indent=1) + "\n")
        return result

    def _run_seeds(self, exp) -> list:
        """``exp.run`` once per training seed in this process: per seed (payload, task
        standard errors, 0.0 (the seconds are counted by the caller), timing)."""
        runs = []
        try:
            for prof in self.seed_profiles():
                self.profile, self._task_se = prof, {}
                payload, timing = self._timed_run(exp)
                runs.append((payload, self._task_se, 0.0, timing))
        finally:
            self.profile = self.base_profile
        return runs

    def _timed_run(self, exp) -> tuple:
        """``exp.run(self)`` and its timing: {part: seconds} and "seconds" in all."""
        self.timer.take()
        t0 = time.monotonic()
        payload = exp.run(self)
        return payload, dict(self.timer.take(), seconds=time.monotonic() - t0)

    @staticmethod
    def _merge(runs: list) -> dict:
        """One payload from (payload, task standard errors, seconds, timing) per seed."""
        payloads = [run[0] for run in runs]
        curves = payloads[0].get("curves", {})
        baselines = {label: v for run in runs for label, v in run[1].items()
                     if v["kind"] == "baseline" and label in curves}
        models = [{label: v["se"] for label, v in run[1].items() if v["kind"] == "model"}
                  for run in runs]
        return merge_seed_payloads(payloads, baselines, models)

    def _check_shared_folder(self) -> None:
        """Once per runner: fail early unless the executor's workers see the output
        folder (they write checkpoints there and evaluate from it)."""
        if not self._folder_checked and hasattr(self.executor, "check_shared_folder"):
            self.executor.check_shared_folder(self.models_dir)
            self._folder_checked = True

    def _evaluate_on_executor(self, names: list) -> dict:
        """Every (experiment, seed) of ``names`` as one task of the executor:
        {name: [(payload, task standard errors, seconds, timing) per seed]}."""
        self._check_shared_folder()
        jobs = [(EXPERIMENTS[name], prof, os.path.abspath(os.path.dirname(self.dir)),
                 dict(self._diverged)) for name in names for prof in self.seed_profiles()]
        self.log(f"evaluating {len(names)} experiment(s) x {len(self.training_seeds)} seed(s) "
                 f"on {self.executor.describe()}")
        done = list(self.executor.map(evaluate_experiment, jobs))
        k = len(self.training_seeds)
        return {name: done[i * k:(i + 1) * k] for i, name in enumerate(names)}

    def run(self, names: Optional[Iterable[str]] = None, figures: bool = True,
            report: bool = True) -> dict:
        """Run the selected experiments (all if None); returns {name: result}.

        Trains the models they declare (phase 1), runs them (phase 2), writes
        <name>.json per experiment, then (from every JSON in the directory) the
        figures and report.md, and last the run manifest run.json
        (``icalign.manifest``)."""
        started, t_start = utc_now(), time.monotonic()
        selected = resolve(names)
        self._plan = self.plan(selected)
        self._prepare(selected)
        todo = [n for n in selected if not (self.resume and self._is_complete(n))]
        needed = self.plan(todo) if todo else []
        trained = [s for s in self._plan if self._finished_on_disk(s)]
        to_train = [s for s in needed if s not in trained]
        if sum(s.flops() for s in to_train) / assumed_flops_per_second() > PROBE_ABOVE_SECONDS:
            self._probe(to_train)
        workers = max(1, int(getattr(self.executor, "workers", 1) or 1))
        wall = plan_times(to_train, 1, self._rate_of, [workers])["wall_on"][workers]
        seeds = len(self.training_seeds)
        self.log(f"icalign reproduce: profile {self.profile.name!r}, {len(selected)} "
                 f"experiment(s), {len(self._plan)} model(s)"
                 f"{f' ({seeds} seeds each)' if seeds > 1 else ''} ({len(trained)} already "
                 f"trained); training estimate {format_seconds(wall)} {self._rate_text()}"
                 f"{f' on {workers} workers' if workers > 1 else ''}; output {self.dir}")
        t_train = time.monotonic()
        done = self.train_models(needed)
        t_eval = time.monotonic()
        # an executor whose workers may be other machines evaluates there too; local
        # worker processes only train (the experiments need not be picklable)
        remote = self._evaluate_on_executor(todo) \
            if todo and getattr(self.executor, "evaluates", False) else {}
        results = {}
        for i, name in enumerate(selected):
            tag = f"[experiment {i + 1}/{len(selected)}] {name}"
            if name not in todo:
                self.log(f"{tag}: finished earlier, skipped")
                results[name] = load_result(self.json_path(name))
                continue
            self.log(f"{tag}: {EXPERIMENTS[name].title}")
            results[name] = self._run_one(name, remote.get(name))
            self.log(f"{tag}: wrote {self.json_path(name)} "
                     f"({format_seconds(results[name]['seconds'])} of compute, the training "
                     f"of its models included)")
        t_outputs = time.monotonic()
        if figures or report:
            build_outputs(self.dir, figures=figures, report=report, log=self.log)
        write_manifest(self.dir, run_manifest(
            self.profile.name, self.training_seeds, self.executor, started,
            (t_start, t_train, t_eval, t_outputs, time.monotonic()), done,
            [s.name for s in needed if s in trained], len(self._plan),
            {n: results[n] for n in todo}, [n for n in selected if n not in todo]))
        self.log(f"done in {format_seconds(time.monotonic() - self._t0)}")
        return results


def evaluate_experiment(job: tuple) -> tuple:
    """Run one experiment for one training seed, as an executor task: ``job`` is
    (Experiment, the profile with that seed's ``train_seed``, the --out folder, the
    models that diverged in training). Loads the trained models from the shared output
    folder; returns (payload, task standard errors of its curves, seconds, timing: the
    seconds per part, see ``icalign.manifest``)."""
    experiment, profile, out, diverged = job
    runner = Runner(profile, out=out, resume=True, progress=False, log=lambda msg: None)
    runner._diverged = dict(diverged)
    payload, timing = runner._timed_run(experiment)
    return payload, runner._task_se, timing["seconds"], timing


def load_or_run(profile: str = "quick", out: str = "results", names=None,
                progress: bool = True) -> dict:
    """The results of ``names`` in ``out/<profile>``; experiments without a finished
    JSON there are run first (resuming any checkpoints)."""
    runner = Runner(profile, out=out, resume=True, progress=progress)
    selected = resolve(names)
    missing = [n for n in selected if not runner._is_complete(n)]
    if missing:
        runner.run(missing)
    return {n: load_result(runner.json_path(n)) for n in selected}
