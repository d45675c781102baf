"""Figures for the experiments and a picture of one task sequence.

matplotlib is optional: it is imported only when a figure is drawn, and a
clear ImportError says how to install it (``pip install "icalign[plot]"``, or
``pip install ".[plot]"`` in a checkout of the source).
Every plot function takes an optional ``ax`` (``axes`` for several panels) to draw
into and returns the figure. This module never chooses a matplotlib backend
(the ``icalign`` command does, to write files) and imports no other part of
icalign but its file writer. Colours are fixed per method so the same method
looks the same in every panel.
"""
from __future__ import annotations

import re

import numpy as np

MATPLOTLIB_HINT = ("matplotlib is not installed; install it with "
                   "`pip install \"icalign[plot]\"` (`pip install \".[plot]\"` in a checkout "
                   "of the source, or just `pip install matplotlib`)")

# One colour per method, used in every panel.
METHOD_COLORS = {"TF": "#1f77b4", "GD": "#ff7f0e", "mean": "#7f7f7f", "best": "#2ca02c",
                 "weighted": "#9467bd", "oracle": "#000000", "optimum": "#d62728"}
METHOD_STYLES = {"TF": "-", "GD": "--", "mean": ":", "best": "-.", "weighted": ":",
                 "oracle": (0, (1, 1)), "optimum": (0, (5, 1, 1, 1))}
METHOD_NAMES = {"TF": "TF (transformer)", "GD": "GD", "mean": "mean response",
                "best": "best-rewarded response", "weighted": "reward-weighted mean",
                "oracle": "task optimum", "optimum": "optimum of the training objective"}


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(MATPLOTLIB_HINT) from None
    return plt


def _figure_axes(ax, figsize, ncols=1, **kwargs):
    """(figure, axes): the given ``ax`` (one Axes, or a sequence of ``ncols``) and its
    figure, or a new figure with ``ncols`` panels."""
    plt = _plt()
    if ax is None:
        fig, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False, **kwargs)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != ncols:
            raise ValueError(f"this figure has {ncols} panel(s); got {len(axes)} axes")
        fig = axes[0].figure
    return fig, (axes[0] if ncols == 1 else axes)


def save_figure(fig, path: str, dpi: int = 130) -> None:
    """Write the figure as PNG atomically (never a half-written file) and close it."""
    from ._files import atomic_write
    plt = _plt()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    plt.close(fig)


def _axes_style(ax, title=None):
    ax.set_xlabel("number of in-context examples t")
    ax.set_ylabel("normalized error 1 − cos(ŷ, y*)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)


def _band(ax, x, result, label, color, alpha=0.15):
    """Shade the 95 % interval of curve ``label`` when the result has one: across
    training seeds for a trained model, +- 1.96 task standard errors for a baseline."""
    unc = result.get("uncertainty", {}).get(label, {})
    lo, hi = unc.get("lo"), unc.get("hi")
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=color, alpha=alpha, lw=0)


def _band_note(ax, result):
    """A line under the axes saying what the bands are."""
    k = len(result.get("seeds", {}).get("training_seeds", [0]))
    what = (f"bands: 95 % interval across {k} training seeds (trained models), "
            if k > 1 else "one training seed (no band for trained models); bands: ")
    ax.text(0.0, -0.16, what + "± 1.96 task standard errors (baselines)",
            transform=ax.transAxes, fontsize=7, color="0.35", va="top")


def _legend(ax, n_curves):
    """A legend that stays legible with many curves: two columns past 8."""
    ax.legend(fontsize=8 if n_curves <= 8 else 7, ncol=1 if n_curves <= 8 else 2,
              framealpha=0.85)


def _ordinal_colors(n, cmap="viridis"):
    plt = _plt()
    cm = plt.get_cmap(cmap)
    return [cm(x) for x in np.linspace(0.05, 0.85, max(n, 1))]


def plot_tf_vs_gd(result, ax=None):
    """Panel a: TF, GD and the simple baselines at p = 0."""
    fig, ax = _figure_axes(ax, (6.4, 4.4))
    t = result["t"]
    for label, ys in result["curves"].items():
        line, = ax.plot(t, ys, linestyle=METHOD_STYLES.get(label, "-"),
                        color=METHOD_COLORS.get(label), lw=2.4 if label in ("TF", "GD") else 1.5,
                        marker="o" if label == "TF" else None, ms=3.5,
                        label=METHOD_NAMES.get(label, label))
        _band(ax, t, result, label, line.get_color())
    _axes_style(ax, f"(a) TF vs GD and baselines — {result.get('profile')} profile")
    ax.set_ylim(bottom=0)
    _legend(ax, len(result["curves"]))
    _band_note(ax, result)
    return fig


def plot_reward_noise(result, axes=None):
    """Panel b: TF (solid) and GD (dashed) curves per p; right, every method at
    t = 15 against p. ``axes``: two Axes."""
    fig, (ax, ax2) = _figure_axes(axes, (11.5, 4.4), ncols=2)
    t, ps = result["t"], result["noise_levels"]
    colors = _ordinal_colors(len(ps), "plasma")
    for p, c in zip(ps, colors):
        for method, style in (("TF", "-"), ("GD", "--")):
            label = f"{method} p={p:g}"
            if label in result["curves"]:
                ax.plot(t, result["curves"][label], style, color=c, lw=2 if method == "TF" else 1.4,
                        label=label)
                _band(ax, t, result, label, c, alpha=0.12)
    _axes_style(ax, "(b) reward noise p: TF (solid), GD (dashed)")
    _legend(ax, 2 * len(ps))
    _band_note(ax, result)
    methods = sorted({re.sub(r" p=.*$", "", k) for k in result["curves"]},
                     key=lambda m: list(METHOD_COLORS).index(m) if m in METHOD_COLORS else 99)
    i15 = t.index(15) if 15 in t else len(t) - 1
    unc = result.get("uncertainty", {})
    for m in methods:
        labels = [f"{m} p={p:g}" for p in ps if f"{m} p={p:g}" in result["curves"]]
        ys = [result["curves"][lab][i15] for lab in labels]
        half = [None if unc.get(lab, {}).get("hi") is None
                else (unc[lab]["hi"][i15] - unc[lab]["lo"][i15]) / 2 for lab in labels]
        ax2.errorbar(ps[:len(ys)], ys, yerr=None if None in half else half, capsize=2,
                     linestyle=METHOD_STYLES.get(m, "-"), marker="o", ms=4,
                     color=METHOD_COLORS.get(m), lw=2 if m in ("TF", "GD") else 1.4,
                     label=METHOD_NAMES.get(m, m))
    ax2.set_xlabel("reward noise p (probability a shown reward is random)")
    ax2.set_ylabel(f"normalized error at t = {t[i15]}")
    ax2.set_title("every method at t = 15")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    return fig


def plot_ablation(result, ax=None):
    """Panels c, d, f: one curve per model variant."""
    fig, ax = _figure_axes(ax, (6.4, 4.4))
    t = result["t"]
    labels = list(result["curves"])
    for label, c in zip(labels, _ordinal_colors(len(labels))):
        ax.plot(t, result["curves"][label], "-o", ms=3, color=c, lw=2, label=label)
        _band(ax, t, result, label, c)
    _axes_style(ax, f"{result.get('title', result.get('experiment'))} — "
                    f"{result.get('profile')} profile")
    _legend(ax, len(labels))
    _band_note(ax, result)
    return fig


def plot_heads(result, axes=None):
    """Panel e: heads at fixed head size (left) and at fixed n_embd (right); ``axes``:
    one Axes per series."""
    series = result["series"]
    fig, axes = _figure_axes(axes, (5.8 * len(series), 4.4), ncols=len(series), sharey=True)
    axes = np.atleast_1d(axes)
    t = result["t"]
    for ax, (title, labels) in zip(axes, series.items()):
        for label, c in zip(labels, _ordinal_colors(len(labels))):
            ax.plot(t, result["curves"][label], "-o", ms=3, color=c, lw=2, label=label)
            _band(ax, t, result, label, c)
        _axes_style(ax, f"(e) heads at {title}")
        _legend(ax, len(labels))
    _band_note(axes[0], result)
    return fig


def _plane(ystar, eps):
    """Coordinates in the plane of y* and eps: along y*, and along the part of
    eps orthogonal to it (the responses all lie in this plane)."""
    e1 = np.asarray(ystar, np.float64) / np.linalg.norm(ystar)
    rest = np.asarray(eps, np.float64) - (np.asarray(eps, np.float64) @ e1) * e1
    e2 = rest / max(np.linalg.norm(rest), 1e-12)
    return lambda v: (np.asarray(v, np.float64) @ e1, np.asarray(v, np.float64) @ e2)


def _draw_plane(ax, ys, rs, ystar, eps):
    """Responses (coloured by shown reward), the segment eps-y*, y* and eps in the
    plane of y* and eps; returns the projection and the responses' scatter."""
    proj = _plane(ystar, eps)
    pts = np.array([proj(y) for y in ys])
    ax.plot(*zip(proj(eps), proj(ystar)), color="0.8", lw=1, zorder=0)
    sc = ax.scatter(pts[:, 0], pts[:, 1], c=rs, cmap="viridis", vmin=0, vmax=1, s=28,
                    zorder=3, label="responses y_i")
    ax.scatter(*proj(ystar), marker="*", s=220, color="crimson", zorder=4,
               label="y* (never shown)")
    ax.scatter(*proj(eps), marker="X", s=90, color="0.3", zorder=4, label="eps")
    return proj, sc


def _finish_plane(fig, ax, sc, title):
    fig.colorbar(sc, ax=ax, fraction=0.04, label="shown reward r_i")
    ax.set_title(title)
    ax.set_xlabel("along y*")
    ax.set_ylabel("along eps (orthogonal part)")
    ax.legend(fontsize=8, loc="best")
    ax.set_aspect("equal", adjustable="datalim")


def plot_sequence(batch, index: int = 0, n_show: int = 4, prediction=None, axes=None):
    """A picture of one task: left, the first ``n_show`` triplets as the model
    reads them (x, y, [r, 0, ...] tokens); right, every response y_i in the
    plane of y* and eps, coloured by its shown reward (responses lie on the
    segment from eps (r = 0) to y* (r = 1)). ``prediction`` (d,) adds a point;
    ``axes``: two Axes."""
    xs, ys, rs = batch.xs[index], batch.ys[index], batch.rs[index]
    ystar, eps = batch.ystar[index].astype(np.float64), batch.eps[index].astype(np.float64)
    d = xs.shape[-1]
    n_show = min(n_show, xs.shape[0])
    tokens, names = [], []
    for i in range(n_show):
        r_tok = np.zeros(d)
        r_tok[0] = rs[i]
        tokens += [xs[i], ys[i], r_tok]
        names += [f"x{i + 1}", f"y{i + 1}", f"r{i + 1}"]
    fig, (ax, ax2) = _figure_axes(axes, (11, 4.2), ncols=2,
                                  gridspec_kw={"width_ratios": [1.1, 1]})
    tok = np.array(tokens)
    lim = np.abs(tok).max()
    im = ax.imshow(tok.T, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_yticks(range(d), [f"dim {j + 1}" for j in range(d)], fontsize=8)
    ax.set_title(f"the first {n_show} triplets as tokens (x is the same query each time)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    proj, sc = _draw_plane(ax2, ys, rs, ystar, eps)
    if prediction is not None:
        # the cosine policy reward makes the model's output scale arbitrary: only its
        # direction is scored, so it is drawn at the length of y*
        pred = np.asarray(prediction, np.float64)
        pred = pred * np.linalg.norm(ystar) / max(np.linalg.norm(pred), 1e-12)
        ax2.scatter(*proj(pred), marker="D", s=60, color=METHOD_COLORS["TF"],
                    label="prediction (scaled to |y*|)")
    _finish_plane(fig, ax2, sc, "responses in the plane of y* and eps")
    fig.tight_layout()
    return fig


def plot_history(history, ax=None, window: int = 50):
    """Training loss per step and its running mean."""
    fig, ax = _figure_axes(ax, (6, 3.5))
    ax.plot(np.asarray(history), color="0.75", lw=0.8, label="loss")
    ax.plot(history.smoothed(window), color=METHOD_COLORS["TF"], lw=2,
            label=f"running mean ({window})")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    return fig


# ------------------------------------------------------------------ critic quality
def plot_accuracy_gain(result, axes=None):
    """Scatter of gain vs critic accuracy (marker per k), LS line, r and p in the legend;
    one panel per (reference, context) variant."""
    variants = result.get("variants") or [result]
    fig, axes = _figure_axes(axes, (5.2 * len(variants), 4.2), ncols=len(variants))
    axes = np.atleast_1d(axes)
    markers = "osD^v<>"
    for ax, v in zip(axes, variants):
        pts = v["points"]
        for i, k in enumerate(sorted({p["k"] for p in pts})):
            sel = [p for p in pts if p["k"] == k]
            ax.scatter([p["accuracy"] for p in sel], [p["gain"] for p in sel],
                       marker=markers[i % len(markers)], label=f"k = {k}", alpha=0.8)
        xs = np.linspace(min(p["accuracy"] for p in pts), max(p["accuracy"] for p in pts), 50)
        ax.plot(xs, v["slope"] * xs + v["intercept"], "k--",
                label=f"LS fit: r = {v['pearson_r']:.2f}, p = {v['p_value']:.2g}")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.axvline(0.5, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("critic accuracy (pairwise ranking)")
        ax.set_ylabel(f"gain after {result.get('rounds', 1)} round(s) (error drop)")
        ctx = "critic scores context" if v.get("context", "critic") == "critic" \
            else "oracle scores context"
        ax.set_title(f"noisy {v.get('reference', 'oracle')} critics; {ctx}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("Self-correction gain vs critic accuracy")
    fig.tight_layout()
    return fig


def plot_rounds(result, ax=None):
    """Mean normalized error per self-correction round, one line per critic."""
    fig, ax = _figure_axes(ax, (5.5, 4))
    rounds = result["rounds"]
    seeded = result.get("uncertainty", {})
    for label, curve in result["curves"].items():
        acc = result.get("accuracy", {}).get(label)
        name = f"{label} (acc {acc:.2f})" if acc is not None else label
        if seeded.get(label, {}).get("lo") is not None:   # several seeds: their interval
            line, = ax.plot(rounds, curve, marker="o", label=name)
            _band(ax, rounds, result, label, line.get_color())
        else:                                               # one seed: task standard errors
            se = result.get("se", {}).get(label)
            ax.errorbar(rounds, curve, yerr=se, marker="o", capsize=2, label=name)
    ax.set_xlabel("self-correction round")
    ax.set_ylabel("normalized error 1 - cos(ŷ, y*)")
    ax.set_title(f"Multi-round self-correction (k = {result.get('k')})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_model_size(result, ax=None):
    """Gain with near-perfect critics against model size (parameters, log axis)."""
    fig, ax = _figure_axes(ax, (5.5, 4))
    by = result.get("by_critic") or {result.get("critic", "oracle"): result}
    for j, (label, r) in enumerate(by.items()):
        ax.errorbar(np.asarray(result["sizes"]) * (1 + 0.04 * j), r["gain"],
                    yerr=r.get("gain_se"), marker="o", ls="none", capsize=3,
                    label=f"{label} critic")
    for s, g, lab in zip(result["sizes"], result["gain"], result["labels"]):
        ax.annotate(lab, (s, g), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("parameters")
    ax.set_ylabel(f"gain after {result.get('rounds', 1)} round(s)")
    ax.set_title("Self-correction with a near-perfect critic vs model size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


OBJECTIVE_COLORS = {"PL-cosine": "#1f77b4", "PL-neg_sq": "#d62728", "BT-cosine": "#2ca02c",
                    "BT-neg_sq": "#9467bd"}


def plot_objectives(result, axes=None, converged_enough: float = 0.95):
    """The objectives experiment: per reward-noise level a panel with, for each
    training objective (one colour), TF (solid), GD on the same objective
    (dashed) and the objective's optimum (dotted; crosses where fewer than
    ``converged_enough`` of the tasks converged, i.e. no finite minimiser), with
    the best-rewarded response and the task optimum in grey and black.
    ``axes``: one Axes per noise level."""
    ps = result["noise_levels"]
    fig, axs = _figure_axes(axes, (6.0 * len(ps), 4.6), ncols=len(ps))
    axs = np.atleast_1d(axs)
    t = result["t"]
    for ax, p in zip(axs, ps):
        sfx = f" p={p:g}"
        for label in result["objectives"]:
            c = OBJECTIVE_COLORS.get(label)
            ax.plot(t, result["curves"][f"TF {label}{sfx}"], "-", color=c, lw=2.2, marker="o",
                    ms=3, label=f"TF {label}")
            ax.plot(t, result["curves"][f"GD {label}{sfx}"], "--", color=c, lw=1.3,
                    label=f"GD {label}")
            opt = np.asarray(result["curves"][f"optimum {label}{sfx}"])
            conv = np.asarray(result["converged"][label + sfx]) >= converged_enough
            ax.plot(t, opt, ":", color=c, lw=1.6, label=f"optimum {label}")
            if (~conv).any():
                ax.plot(np.asarray(t)[~conv], opt[~conv], "x", color=c, ms=6)
        for name, color, style in (("best", "0.55", "-."), ("oracle", "k", (0, (1, 1)))):
            ax.plot(t, result["curves"][name + sfx], linestyle=style, color=color, lw=1.3,
                    label=METHOD_NAMES[name])
        _axes_style(ax, f"training objectives, shown rewards {sfx.strip()} "
                        f"(x: optimum not attained)")
        ax.set_ylim(bottom=0)
    axs[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def plot_task_objectives(ys, rs, ystar, eps, answers, ax=None):
    """One task in the plane of y* and eps: the responses coloured by shown
    reward, y*, eps, and for each named answer (``answers``: label -> (d,)
    prediction) the direction it points in, drawn as a ray from the origin to
    the length of y* (the normalized error only sees the direction)."""
    fig, ax = _figure_axes(ax, (6.4, 5.6))
    proj, sc = _draw_plane(ax, ys, rs, ystar, eps)
    scale = np.linalg.norm(ystar)
    for label, pred in answers.items():
        pred = np.asarray(pred, np.float64)
        end = proj(pred * scale / max(np.linalg.norm(pred), 1e-12))
        color = OBJECTIVE_COLORS.get(label.split()[-1], "0.2")
        ax.plot([0, end[0]], [0, end[1]], color=color, lw=1.8)
        ax.scatter(*end, marker="o", s=30, color=color, zorder=5)
        ax.text(end[0], end[1], " " + label, fontsize=8, color=color)
    ax.scatter([0], [0], marker="+", color="k", s=40)
    _finish_plane(fig, ax, sc, "one task: where each answer points (rays drawn to |y*|)")
    return fig
