"""The three critic-quality studies as functions of trained models
(``docs/math.md``, "Critics and self-correction" and "Claims and what each tests").

``critic_accuracy_gain``  self-correction gain against critic accuracy;
``critic_rounds``         error per self-correction round for several critics;
``critic_model_size``     gain with near-perfect critics against model size.

By default they evaluate on the first ``n_tasks`` tasks of the fixed evaluation set
(``icalign.evaluation_set``), the tasks the registered experiments use, so a notebook
calling them reproduces the report's numbers.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from .critics import OracleCritic, SelfCritic, check_reference, make_critic
from .evaluate import evaluation_set
from .self_correction import self_correct
from .stats import pearson, permutation_pvalue
from .task import AlignmentTask, TaskBatch

#: version of the experiment results' layout (stored as "format"; bump when keys change)
RESULT_FORMAT = 3


DEFAULT_ACCURACY_CRITICS = ("reference", "gauss:0.1", "gauss:0.3", "gauss:1", "replace:0.25",
                            "replace:0.5", "replace:0.75", "replace:1", "inverted", "self")
DEFAULT_ROUND_CRITICS = ("oracle", "quality", "gauss:0.3", "replace:0.5", "self")
#: (reference, context) variants of experiment 1: the oracle's (its noisy versions
#: score the context and the answers) first, then the quality critic's noisy versions
#: judging only the answers (context by the oracle, so ŷ_0 is shared)
DEFAULT_VARIANTS = (("oracle", "critic"), ("quality", "oracle"))


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se


def _eval_batch(model, task, n_tasks, eval_seed, batch=None):
    """The evaluation tasks: the first ``n_tasks`` of ``batch`` if given, else the first
    ``n_tasks`` of the fixed evaluation set ``evaluation_set(task, seed=eval_seed)`` (the
    tasks the registered experiments use: the set is a counter-based stream, so its first
    n tasks do not depend on its size)."""
    if batch is not None:
        if batch.batch_size < n_tasks:
            raise ValueError(f"the evaluation batch has {batch.batch_size} tasks, fewer than "
                             f"n_tasks={n_tasks}")
        if batch.reward_noise != 0.0:
            raise ValueError("the evaluation batch must have exact shown rewards "
                             "(reward_noise=0); the critics decide the rewards here")
        return batch[:int(n_tasks)]
    task = task or AlignmentTask(model.config.n_dims, model.config.n_points)
    return evaluation_set(task, int(n_tasks), seed=eval_seed)


CONTEXT_MODES = ("critic", "oracle")


def _critic_runs(model, critics, context, self_both=False, base="oracle"):
    """Expand critic specs into (label, critic, context_critic) runs.

    ``context='critic'``: each critic also scores the k context triplets;
    ``'oracle'``: the oracle scores the context and the critic only the model's answers,
    so ŷ_0 is the same for every critic. 'reference' is the perfect critic ``base``; noisy
    critics and 'inverted' are built on ``base``. 'self' runs only with a reward head; with
    ``self_both`` (and context='critic') it gives a second run 'self (oracle context)'.
    """
    if context not in CONTEXT_MODES:
        raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
    check_reference(base)
    include_self = bool(model.config.reward_head)
    runs = []
    for spec in critics:
        if spec == "self" or isinstance(spec, SelfCritic):
            if not include_self:
                continue
            sc = spec if isinstance(spec, SelfCritic) else SelfCritic(model)
            runs.append((sc.label, sc, OracleCritic() if context == "oracle" else None))
            if self_both and context == "critic":
                runs.append((f"{sc.label} (oracle context)", sc, OracleCritic()))
        else:
            c = make_critic(base if spec == "reference" else spec, model, base=base)
            runs.append((c.label, c, OracleCritic() if context == "oracle" else None))
    return runs


def _accuracy_gain_variant(model, batch, critics, k_values, rounds, reference, context,
                           rescale, seed, n_permutations):
    runs = _critic_runs(model, critics, context, base=reference)
    points = []
    for k in k_values:
        for i, (label, crit, ctx) in enumerate(runs):
            res = self_correct(model, batch, crit, k, rounds, context_critic=ctx,
                               rescale=rescale, seed=seed + 1000 * k + i, reference=reference)
            gain, gain_se = _mean_se(res.gains())
            acc, acc_se = _mean_se(res.accuracy(
                positions="all" if context == "critic" else "answers"))
            points.append({"critic": label, "k": k, "accuracy": acc, "accuracy_se": acc_se,
                           "gain": gain, "gain_se": gain_se,
                           "accuracy_answers": float(np.nanmean(res.accuracy(
                               positions="answers"))) if rounds >= 1 else None,
                           "error_before": float(res.errors[:, 0].mean()),
                           "error_after": float(res.errors[:, -1].mean())})
    acc = np.array([p["accuracy"] for p in points])
    gain = np.array([p["gain"] for p in points])
    st = pearson(acc, gain)
    above = acc >= 0.5
    st_above = pearson(acc[above], gain[above]) if above.sum() >= 3 and \
        np.ptp(acc[above]) > 0 and np.ptp(gain[above]) > 0 else None
    return {"reference": reference, "context": context, "points": points,
            "pearson_r": st["pearson_r"], "p_value": st["p_value"], "slope": st["slope"],
            "intercept": st["intercept"], "n_points": st["n"],
            "p_value_permutation": permutation_pvalue(acc, gain, n_permutations, seed=seed),
            "above_chance": None if st_above is None else
            {"pearson_r": st_above["pearson_r"], "p_value": st_above["p_value"],
             "slope": st_above["slope"], "n_points": st_above["n"]}}


def critic_accuracy_gain(model, task: AlignmentTask | None = None,
                         critics: Iterable = DEFAULT_ACCURACY_CRITICS,
                         k_values: Iterable[int] = (2, 4, 8), rounds: int = 1,
                         n_tasks: int = 256, seed: int = 0, eval_seed: int = 0,
                         rescale: str = "context",
                         variants: Sequence[tuple] = DEFAULT_VARIANTS,
                         n_permutations: int = 10_000, batch: TaskBatch | None = None) -> dict:
    """Experiment 1: self-correction gain against critic accuracy.

    For every critic setting and every k, ``rounds`` rounds of self-correction on the same
    ``n_tasks`` held-out tasks (the fixed evaluation set, never used in training); one point
    per (critic, k) with its mean gain error(ŷ_0) - error(ŷ_rounds) and mean pairwise
    accuracy against the true weights (the task's for context responses, the reference
    critic's for the answers). Pearson r, the least-squares line and a two-sided p-value
    (exact t test, and a permutation test) over the points. See docs/math.md, sections
    "Critics and self-correction" and "Claims and what each tests".

    Parameters
    ----------
    model : Transformer
        The trained (causal) model.
    task : AlignmentTask, optional
        Task family of the evaluation set (default: the model's d and N).
    critics : iterable of Critic or str, default ``DEFAULT_ACCURACY_CRITICS``
        ``make_critic`` specs, plus 'reference' (the variant's perfect critic)
        and 'self' (run only if the model has a reward head).
    k_values : iterable of int, default (2, 4, 8)
        Context sizes.
    rounds : int, default 1
        Self-correction rounds per run.
    n_tasks : int, default 256
        Evaluation tasks.
    seed : int, default 0
        Seed of the critics' noise and of the permutation test.
    eval_seed : int, default 0
        Which evaluation set (``evaluation_set``).
    rescale : {'context', 'none'}, default 'context'
        As for ``self_correct``.
    variants : sequence of (reference, context) pairs, default ``DEFAULT_VARIANTS``
        Each a full set of points. ``reference`` ('oracle' or 'quality') is
        the perfect critic: 'reference' in ``critics``, the base of the noisy
        and inverted critics, and the truth of accuracy.
        ``context='critic'``: the critic also scores the k context triplets,
        accuracy over all pairs (the oracle's set-up); ``'oracle'``: the
        oracle scores the context, so ŷ_0 is the same for every critic, and
        accuracy counts the pairs involving the model's answers.
    n_permutations : int, default 10000
        Permutations of the permutation test.
    batch : TaskBatch, optional
        Evaluate on its first ``n_tasks`` tasks (exact rewards) instead of the
        first ``n_tasks`` of ``evaluation_set(task, seed=eval_seed)``; the
        same holds for ``critic_rounds`` and ``critic_model_size``.

    Returns
    -------
    dict
        JSON-able. The first variant's numbers at the top level: "points"
        (one dict per (critic, k): "critic", "k", "accuracy", "gain", their
        standard errors, "error_before", "error_after", ...), "pearson_r",
        "p_value", "p_value_permutation", "slope", "intercept", "n_points",
        "above_chance" (the same over the points with accuracy >= 0.5, or
        None); every variant's under "variants"; and the settings.

    Raises
    ------
    ValueError
        If ``variants`` is empty or malformed, a reference or context mode is
        unknown, ``batch`` is too small or has noisy rewards, there are fewer
        than three points or their accuracies or gains are all equal (no
        correlation), or the self-correction arguments are invalid.

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> out = ica.critic_accuracy_gain(model, critics=("reference", "gauss:0.3", "inverted"),
    ...                                k_values=(2,), n_tasks=8, n_permutations=99,
    ...                                variants=(("oracle", "critic"),))
    >>> [(p["critic"], p["k"]) for p in out["points"]]
    [('oracle', 2), ('gauss s=0.3', 2), ('inverted', 2)]
    >>> out["n_points"], -1.0 <= out["pearson_r"] <= 1.0
    (3, True)
    """
    k_values = [int(k) for k in k_values]
    variants = [tuple(v) for v in variants]
    if not variants or any(len(v) != 2 for v in variants):
        raise ValueError(f"variants must be a non-empty list of (reference, context) pairs, "
                         f"got {variants!r}")
    for ref, ctx in variants:
        check_reference(ref)
        if ctx not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {CONTEXT_MODES}, got {ctx!r}")
    batch = _eval_batch(model, task, n_tasks, eval_seed, batch)
    results = [_accuracy_gain_variant(model, batch, list(critics), k_values, rounds, ref, ctx,
                                      rescale, seed, n_permutations) for ref, ctx in variants]
    main = results[0]
    return {"experiment": "critic_accuracy_gain", "format": RESULT_FORMAT, **main,
            "variants": results, "rounds": int(rounds), "k_values": k_values,
            "n_tasks": int(n_tasks), "seed": int(seed), "rescale": rescale,
            "model": _model_info(model)}


def critic_rounds(model, task: AlignmentTask | None = None,
                  critics: Iterable = DEFAULT_ROUND_CRITICS, k: int = 4, rounds: int = 5,
                  n_tasks: int = 256, seed: int = 0, eval_seed: int = 0,
                  rescale: str = "context", context: str = "critic",
                  batch: TaskBatch | None = None) -> dict:
    """Experiment 2: mean error per round 0..``rounds`` for each critic (same tasks for all).

    Labels: the critic labels ('oracle', 'gauss s=0.3', 'replace p=0.5', ...) and, with a
    reward head, 'self'. With ``context='critic'`` each critic also scores the context
    (and 'self (oracle context)' is added: context by the oracle, answers by the reward
    head); with ``'oracle'`` the oracle scores every context, so round 0 is shared. See
    docs/math.md, section "Critics and self-correction".

    Parameters
    ----------
    model, task, n_tasks, seed, eval_seed, rescale, batch
        As for ``critic_accuracy_gain`` (critic i draws its noise from
        ``seed + i``).
    critics : iterable of Critic or str, default ``DEFAULT_ROUND_CRITICS``
        ``make_critic`` specs; 'self' runs only if the model has a reward head.
    k : int, default 4
        Context triplets.
    rounds : int, default 5
        Rounds R.
    context : {'critic', 'oracle'}, default 'critic'
        Who scores the k context triplets.

    Returns
    -------
    dict
        JSON-able: "curves" ({label: mean error per round}), "rounds"
        ([0..R]), "se" and "gain_se" (per-round standard errors of the error
        and of the gain), "accuracy" and "accuracy_answers" (all pairs; pairs
        involving answers), "after_best" (the best round and the rise after
        it), "answers_oracle_at_1" (``SelfCorrection.oracle_at_one``), and the
        settings.

    Raises
    ------
    ValueError
        If ``context`` is unknown, ``batch`` is too small or has noisy
        rewards, or the self-correction arguments are invalid.

    Examples
    --------
    >>> import icalign as ica
    >>> model = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> out = ica.critic_rounds(model, critics=("oracle", "replace:0.5"), k=4, rounds=3,
    ...                         n_tasks=8)
    >>> list(out["curves"]), out["rounds"]
    (['oracle', 'replace p=0.5'], [0, 1, 2, 3])
    >>> [len(c) for c in out["curves"].values()]
    [4, 4]
    """
    batch = _eval_batch(model, task, n_tasks, eval_seed, batch)
    runs = _critic_runs(model, critics, context, self_both=True)
    curves, se, accuracy, acc_answers, gain_se, after_best, at_one = ({} for _ in range(7))
    for i, (label, crit, ctx) in enumerate(runs):
        res = self_correct(model, batch, crit, k, rounds, context_critic=ctx, rescale=rescale,
                           seed=seed + i)
        e = res.errors
        n = e.shape[0]
        curves[label] = res.mean_errors()
        se[label] = (e.std(axis=0, ddof=1) / math.sqrt(n)).tolist()
        # paired standard errors: of the gain err_0 - err_r, and of the rise after the best
        gain_se[label] = ((e[:, :1] - e).std(axis=0, ddof=1) / math.sqrt(n)).tolist()
        b = int(np.argmin(e.mean(axis=0)))
        rise = e[:, -1] - e[:, b]
        after_best[label] = {"best_round": b, "rise": float(rise.mean()),
                             "rise_se": float(rise.std(ddof=1) / math.sqrt(n))}
        at_one[label] = res.oracle_at_one()
        accuracy[label] = float(np.nanmean(res.accuracy()))
        acc_answers[label] = float(np.nanmean(res.accuracy(positions="answers"))) \
            if rounds >= 1 else None
    return {"experiment": "critic_rounds", "format": RESULT_FORMAT, "x_key": "rounds",
            "rounds": list(range(rounds + 1)),
            "curves": curves,
            "se": se, "gain_se": gain_se, "after_best": after_best, "accuracy": accuracy,
            "accuracy_answers": acc_answers, "answers_oracle_at_1": at_one,
            "context": context, "k": int(k),
            "n_tasks": int(n_tasks), "seed": int(seed), "rescale": rescale,
            "model": _model_info(model)}


def critic_model_size(models: Sequence, task: AlignmentTask | None = None,
                      critics: Sequence = ("oracle", "quality"), k: int = 4, rounds: int = 1,
                      n_tasks: int = 256, seed: int = 0, eval_seed: int = 0,
                      rescale: str = "context", labels: Sequence[str] | None = None,
                      batch: TaskBatch | None = None) -> dict:
    """Experiment 3: gain with near-perfect critics for trained models of several sizes.

    Every model self-corrects on the same tasks with each critic (default:
    the oracle, and the quality critic); docs/math.md, section "Claims and
    what each tests".

    Parameters
    ----------
    models : sequence of Transformer
        The trained (causal) models, all of the same n_dims.
    task : AlignmentTask, optional
        Task family of the evaluation set (default: the models' d and their
        smallest N).
    critics : sequence of Critic or str, default ('oracle', 'quality')
        Critics that do not depend on the model (not 'self').
    k : int, default 4
        Context triplets.
    rounds : int, default 1
        Rounds R.
    n_tasks, seed, eval_seed, rescale, batch
        As for ``critic_accuracy_gain``.
    labels : sequence of str, optional
        One label per model (default: 'E{n_embd} L{n_layer} H{n_head}').

    Returns
    -------
    dict
        JSON-able: "sizes" (parameter counts, in the order given), "labels",
        "config" (each model's ModelConfig as a dict); "gain" (with
        "gain_se", "error_before", "error_after", "accuracy"): the mean gain
        after ``rounds`` rounds with the first critic, one value per model;
        "by_critic": the same for every critic ("error_before" is shared:
        both perfect critics score task responses alike); and the settings.

    Raises
    ------
    ValueError
        If there is no model or no critic, a critic is a self-critic, the
        labels do not match the models, the models differ in n_dims, or the
        self-correction arguments are invalid.

    Examples
    --------
    >>> import icalign as ica
    >>> small = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2))
    >>> large = ica.Transformer(ica.ModelConfig(n_embd=8, n_layer=2, n_head=2))
    >>> out = ica.critic_model_size([small, large], n_tasks=8)
    >>> out["labels"], out["sizes"], out["critics"]
    (['E8 L1 H2', 'E8 L2 H2'], [1461, 2333], ['oracle', 'quality'])
    >>> len(out["gain"]), sorted(out["by_critic"])
    (2, ['oracle', 'quality'])
    """
    models = list(models)
    critics = [make_critic(c) for c in critics]
    if not models or not critics:
        raise ValueError("critic_model_size needs at least one model and one critic")
    if any(isinstance(c, SelfCritic) for c in critics):
        raise ValueError("critic_model_size compares models: use critics that do not depend "
                         "on the model ('oracle', 'quality', noisy ones)")
    if labels is not None and len(labels) != len(models):
        raise ValueError(f"{len(labels)} labels for {len(models)} models")
    dims = {(m.config.n_dims, m.config.n_points) for m in models}
    n_dims = models[0].config.n_dims
    if len({d for d, _ in dims}) != 1:
        raise ValueError(f"all models must share n_dims, got {sorted(dims)}")
    batch = _eval_batch(models[0], task or AlignmentTask(
        n_dims, min(m.config.n_points for m in models)), n_tasks, eval_seed, batch)
    by = {c.label: {"gain": [], "gain_se": [], "error_before": [], "error_after": [],
                    "accuracy": []} for c in critics}
    out = {"experiment": "critic_model_size", "format": RESULT_FORMAT, "sizes": [],
           "labels": [], "answers_oracle_at_1": [], "config": []}
    for i, m in enumerate(models):
        for c in critics:
            res = self_correct(m, batch, c, k, rounds, rescale=rescale, seed=seed)
            g, g_se = _mean_se(res.gains())
            row = by[c.label]
            row["gain"].append(g)
            row["gain_se"].append(g_se)
            row["error_before"].append(float(res.errors[:, 0].mean()))
            row["error_after"].append(float(res.errors[:, -1].mean()))
            row["accuracy"].append(float(np.nanmean(res.accuracy())))
            if c is critics[0]:
                out["answers_oracle_at_1"].append(res.oracle_at_one())
        cfg = m.config
        out["sizes"].append(int(m.num_parameters))
        out["labels"].append(labels[i] if labels is not None else
                             f"E{cfg.n_embd} L{cfg.n_layer} H{cfg.n_head}")
        out["config"].append(cfg.to_dict())
    first = by[critics[0].label]
    out.update({"gain": first["gain"], "gain_se": first["gain_se"],
                "error_before": first["error_before"], "error_after": first["error_after"],
                "accuracy": first["accuracy"], "by_critic": by, "critic": critics[0].label,
                "critics": [c.label for c in critics], "k": int(k), "rounds": int(rounds),
                "n_tasks": int(n_tasks), "seed": int(seed), "rescale": rescale})
    return out


def _model_info(model) -> dict:
    return {"config": model.config.to_dict(), "parameters": int(model.num_parameters)}

