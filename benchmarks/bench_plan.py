#!/usr/bin/env python
"""How good is the time estimate? ``icalign plan``'s probe against real trainings.

For one model of a profile, probes its training rate as ``icalign plan`` and the
runner do (two timed steps in every worker of the executor at once), then trains
the model for --steps steps in every worker, side by side, as a reproduction would,
and prints the estimated and measured time per step and their ratio. The runner
corrects its ETA by the models it has finished, so this is the estimate before the
first model is done: the one ``icalign plan`` prints.

    python benchmarks/bench_plan.py --profile paper --steps 40      # the paper's model
    python benchmarks/bench_plan.py --profile quick --steps 600 --jobs 1 --threads 2

A whole reproduction is checked by comparing ``icalign plan``'s "wall time on this
machine" with the training time in the run's ``run.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def train_for(job: tuple) -> float:
    """Worker task: seconds per step of ``steps`` training steps of ``spec`` (one warm-up
    step first, as the probe takes)."""
    spec, steps, seed = job
    import icalign as ica
    model = ica.Transformer(spec.config, seed=seed)
    task = ica.AlignmentTask(spec.config.n_dims, spec.config.n_points)
    ica.train(model, task, steps=1, batch_size=spec.batch_size, lr=spec.lr, seed=seed,
              progress=False)
    t0 = time.perf_counter()
    ica.train(model, task, steps=steps, batch_size=spec.batch_size, lr=spec.lr, seed=seed,
              progress=False)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    from icalign import set_num_threads
    from icalign.executors import default_jobs, make_executor
    from icalign.profiles import PROFILES
    from icalign.registry import load_builtin_experiments, plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="paper", choices=sorted(PROFILES))
    parser.add_argument("--model", type=int, default=0,
                        help="index of the model in `icalign plan`'s list (default 0)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per worker")
    parser.add_argument("--jobs", type=int, default=None,
                        help="worker processes (default: one per core, as reproduce)")
    parser.add_argument("--threads", type=int, default=None,
                        help="C-core threads with --jobs 1")
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    load_builtin_experiments()
    if args.threads:
        set_num_threads(args.threads)
    spec = plan(PROFILES[args.profile])[args.model]
    jobs = args.jobs or default_jobs()
    with make_executor(jobs=jobs, log=lambda msg: None) as executor:
        rate = executor.measure_rates([spec])(spec)
        estimate = spec.flops() / spec.steps / rate
        per_step = list(executor.map(train_for, [(spec, args.steps, seed)
                                                 for seed in range(max(1, jobs))]))
        where = executor.describe()
    measured = sum(per_step) / len(per_step)
    out = {"profile": args.profile, "model": spec.name, "executor": where,
           "probe_gflops": rate / 1e9, "estimated_s_per_step": estimate,
           "measured_s_per_step": per_step, "ratio_measured_to_estimate": measured / estimate,
           "load_average": os.getloadavg()}
    print(f"{spec.name} ({args.profile}) on {where}: estimated {estimate * 1e3:.1f} ms per "
          f"step (probe {rate / 1e9:.1f} GFLOP/s), measured "
          f"{', '.join(f'{s * 1e3:.1f}' for s in per_step)} ms over {args.steps} steps: "
          f"measured / estimated = {measured / estimate:.3f}")
    print(f"full training of {spec.steps} steps: estimated "
          f"{estimate * spec.steps / 60:.1f} min, at the measured rate "
          f"{measured * spec.steps / 60:.1f} min")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
