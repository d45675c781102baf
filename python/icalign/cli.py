"""Command line: ``icalign reproduce``, ``icalign report``, ``icalign plan``."""
from __future__ import annotations

import argparse
import os
import sys

from ._version import __version__
from .executors import ClusterError, WorkerDied
from .profiles import (ASSUMED_EFFICIENCY, ASSUMED_PEAK_FLOPS, PROFILES,
                       assumed_flops_per_second, format_seconds,
                       train_flops_per_step)
from .registry import describe_names, load_builtin_experiments, plan


JOBS_HELP = ("train (and evaluate) in N local processes side by side, each on "
             "--threads-per-worker C-core threads; --jobs 1 runs everything in this process "
             "on --threads threads (default: one single-threaded process per core: as fast as "
             "one process on every core on a quiet machine, and faster when other processes "
             "compete for the cores; --jobs 1 when --threads is given)")
PLAN_JOBS_HELP = ("estimate the wall time of training in N local processes side by side, "
                  "each on --threads-per-worker C-core threads, each model's rate measured in "
                  "them; --jobs 1: in this process on --threads threads (default: one process "
                  "per core, as for icalign reproduce; --jobs 1 when --threads is given)")
README_HELP = ("also rewrite the results block of this README (between <!-- results:begin "
               "--> and <!-- results:end -->) from DIR")


def _names(value):
    return [n for n in value.split(",") if n.strip()] if value else None


def _parser() -> argparse.ArgumentParser:
    profiles = sorted(PROFILES)
    parser = argparse.ArgumentParser(
        prog="icalign",
        description="Self-correction as in-context alignment (Wang et al., NeurIPS 2024), "
                    "reproduced on the CPU.")
    parser.add_argument("--version", action="version", version=f"icalign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    rep = sub.add_parser(
        "reproduce", help="train, evaluate and write JSON, figures and report.md",
        description="Runs the experiments of a profile and writes DIR/<profile>/: one JSON and "
                    "one PNG per experiment and report.md. Trained models are cached as "
                    "checkpoints in DIR/<profile>/models/; Ctrl-C leaves them resumable.")
    rep.add_argument("--profile", default="quick", choices=profiles,
                     help="quick (default; tens of minutes on 2 cores: `icalign plan` estimates it), "
                          "paper (the published set-up; hours), smoke (seconds; for tests)")
    rep.add_argument("--only", metavar="NAMES", default=None,
                     help=f"comma-separated experiments to run (default: all): "
                          f"{describe_names()}")
    rep.add_argument("--out", metavar="DIR", default="results",
                     help="output directory (default: ./results)")
    group = rep.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true",
                       help="continue interrupted training and skip finished experiments")
    group.add_argument("--force", action="store_true",
                       help="delete earlier results of the selected experiments and start over")
    rep.add_argument("--threads", type=int, default=None,
                     help="threads of the C core (default: OpenMP's default)")
    rep.add_argument("--seeds", type=int, default=1, metavar="K",
                     help="independent training seeds per model (default 1); the JSON keeps "
                          "every seed's curve with the mean and a 95%% interval, and claims "
                          "are decided across seeds (3 or more to decide them)")
    cluster = rep.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS", default=None,
                         help="train on a running Dask cluster (e.g. tcp://host:8786); its "
                              "workers must see --out at the same path (pip install "
                              "'icalign[cluster]', or pip install '.[cluster]' in a checkout "
                              "of the source)")
    cluster.add_argument("--workers", type=int, default=None, metavar="N",
                         help="train on a local Dask cluster of N worker processes")
    cluster.add_argument("--jobs", type=int, default=None, metavar="N", help=JOBS_HELP)
    rep.add_argument("--threads-per-worker", type=int, default=1, metavar="T",
                     help="C-core threads of each --jobs or --workers process (default 1)")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")

    rpt = sub.add_parser("report", help="rebuild figures and report.md from the JSON files",
                         description="Rebuilds the PNGs and report.md of a reproduce output "
                                     "from its JSON files, without training.")
    rpt.add_argument("dir", metavar="DIR",
                     help="a profile folder (results/quick) or an --out folder holding one")
    rpt.add_argument("--profile", default=None, choices=profiles,
                     help="profile subfolder when DIR is an --out folder holding several")
    rpt.add_argument("--no-figures", action="store_true",
                     help="rebuild report.md only, not the PNG figures")
    rpt.add_argument("--changes-from", metavar="REPORT", default=None,
                     help="an earlier report.md (e.g. of a one-seed run): print the claims "
                          "whose verdict changed since; with --readme, also keep its "
                          "verdicts in DIR/previous_verdicts.json for the README block")
    rpt.add_argument("--readme", metavar="README", default=None, help=README_HELP)
    rpt.add_argument("--changes-label", metavar="TEXT", default=None,
                     help="how the README block names the earlier report (default: from "
                          "the seeds it states, e.g. 'the run with one training seed')")

    pl = sub.add_parser("plan", help="list the models a profile trains and the time estimate",
                        description="Lists the models a profile trains, with their FLOPs and "
                                    "the training time estimated from rates measured on this "
                                    "machine, without training.")
    pl.add_argument("--profile", default="quick", choices=profiles,
                    help="the profile to plan (default: quick; see icalign reproduce --help)")
    pl.add_argument("--only", metavar="NAMES", default=None,
                    help=f"comma-separated experiments (default: all): {describe_names()}")
    pl.add_argument("--seeds", type=int, default=1, metavar="K",
                    help="training seeds per model (default 1)")
    pl.add_argument("--workers", type=int, default=None, metavar="W",
                    help="also print the wall time on W workers (default: 4 and 16)")
    pl.add_argument("--jobs", type=int, default=None, metavar="N", help=PLAN_JOBS_HELP)
    pl.add_argument("--threads-per-worker", type=int, default=1, metavar="T",
                    help="C-core threads of each --jobs process (default 1)")
    pl.add_argument("--threads", type=int, default=None,
                    help="threads of the C core with --jobs 1 (default: OpenMP's default)")
    pl.add_argument("--assume", action="store_true",
                    help="use the assumed throughput instead of timing two training steps of "
                         "every model shape on this machine (a few seconds; the default)")
    return parser


def _has_json(path: str) -> bool:
    return os.path.isdir(path) and any(f.endswith(".json") for f in os.listdir(path))


def _report_dir(path: str, profile) -> str:
    if profile:
        path = os.path.join(path, profile)
    if _has_json(path):
        return path
    subs = [d for d in sorted(os.listdir(path)) if _has_json(os.path.join(path, d))] \
        if os.path.isdir(path) else []
    if len(subs) == 1:
        return os.path.join(path, subs[0])
    if not subs:
        raise FileNotFoundError(f"no experiment JSON files in {path!r} or its subfolders")
    raise ValueError(f"{path!r} holds several profiles ({', '.join(subs)}); pass --profile")


def _jobs(args, parser) -> int:
    """--jobs, defaulting to one process per core unless --threads asks for one process."""
    for name in ("seeds", "threads", "threads_per_worker", "workers", "jobs"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.threads is not None:
        from . import set_num_threads
        set_num_threads(args.threads)
    if args.jobs is not None:
        return args.jobs
    from .executors import default_jobs
    return 1 if args.threads is not None else default_jobs()


def _plan(args, parser) -> int:
    from .executors import make_executor
    profile = PROFILES[args.profile]
    specs = plan(profile, _names(args.only))
    rate = assumed_flops_per_second()
    how = (f"{rate / 1e9:.0f} GFLOP/s ({ASSUMED_EFFICIENCY:.0%} of an assumed "
           f"{ASSUMED_PEAK_FLOPS / 1e9:.0f} GFLOP/s peak)")
    with make_executor(jobs=_jobs(args, parser), threads_per_worker=args.threads_per_worker,
                       log=lambda msg: None) as executor:
        here, jobs = executor.describe(), executor.workers
        if not args.assume and specs:
            rate = executor.measure_rates(specs)
            how = (f"the rate of each model measured just now on {here}"
                   + (", side by side" if jobs > 1 else ""))
    rate_of = rate if callable(rate) else (lambda spec: rate)
    total = seconds = 0.0
    print(f"profile {profile.name}: {profile.description}")
    for s in specs:
        f, r = s.flops(), rate_of(s)
        total += f
        seconds += f / r
        print(f"  {s.name:32s} {train_flops_per_step(s.config, s.batch_size) / 1e9:8.2f} "
              f"GFLOP/step x {s.steps} steps = {f / 1e12:8.2f} TFLOP  ~{format_seconds(f / r)}"
              f"{'' if args.assume else f'  ({r / 1e9:.3g} GFLOP/s)'}")
    print(f"{len(specs)} models, {total / 1e12:.1f} TFLOP: ~{format_seconds(seconds)} "
          f"of training at {how}")
    _print_seed_plan(specs, args, rate, jobs, here)
    return 0


def _print_seed_plan(specs, args, rate, jobs, here) -> None:
    from .planning import plan_times
    workers = [args.workers] if args.workers else [4, 16]
    times = plan_times(specs, args.seeds, rate, [jobs] + workers)
    print(f"with {args.seeds} seed(s): {times['trainings']} trainings, {times['tflop']:.1f} "
          f"TFLOP, {times['model_hours']:.2f} model-hours; wall time on this machine "
          f"({here}) ~{format_seconds(times['wall_on'][jobs])} of training")
    for w in workers:
        print(f"  on {w} workers (each as fast as one of these, longest trainings first): "
              f"~{format_seconds(times['wall_on'][w])}")


def _use_file_backend() -> None:
    """The command only writes figures to files: draw them without a display."""
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")


def _reproduce(args, parser) -> int:
    from . import plotting
    from .runner import Runner
    if not plotting.have_matplotlib():
        print(f"icalign: figures will be skipped: {plotting.MATPLOTLIB_HINT}", file=sys.stderr)
    from .executors import make_executor
    with make_executor(scheduler=args.scheduler, workers=args.workers,
                       jobs=_jobs(args, parser),
                       threads_per_worker=args.threads_per_worker) as executor:
        if executor.workers > 1 or args.scheduler is not None:
            print(f"icalign: training on {executor.describe()}", file=sys.stderr)
        runner = Runner(args.profile, out=args.out, resume=args.resume, force=args.force,
                        progress=not args.no_progress, executor=executor, seeds=args.seeds)
        runner.run(_names(args.only))
    print(f"results in {runner.dir} (report: {os.path.join(runner.dir, 'report.md')})")
    return 0


def main(argv=None) -> int:
    load_builtin_experiments()
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "plan":
            return _plan(args, parser)
        _use_file_backend()
        if args.command == "report":
            from .report import build_outputs, verdict_changes
            directory = _report_dir(args.dir, args.profile)
            build_outputs(directory, figures=not args.no_figures)
            if args.changes_from:
                with open(args.changes_from, encoding="utf-8") as f:
                    before = f.read()
                with open(os.path.join(directory, "report.md"), encoding="utf-8") as f:
                    print(verdict_changes(before, f.read()), end="")
            if args.readme:
                from .summary import save_previous_verdicts, update_readme
                if args.changes_from:
                    save_previous_verdicts(directory, before, args.changes_label)
                update_readme(args.readme, directory)
                print(f"rewrote the results block of {args.readme} from {directory}",
                      file=sys.stderr)
            return 0
        return _reproduce(args, parser)
    except KeyboardInterrupt:
        print("\ninterrupted: checkpoints are kept; rerun with --resume to continue",
              file=sys.stderr)
        return 130
    except (ValueError, FileExistsError, FileNotFoundError, ImportError,
            ClusterError, WorkerDied) as exc:
        print(f"icalign: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only folder: files written so far are whole
        print(f"icalign: error: {exc}; the results written before are intact, rerun with "
              f"--resume once the problem is fixed", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
