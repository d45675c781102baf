"""Profiles (the sizes of one reproduction), training specs and the cost model.

Profile      the sizes of one reproduction: model, ablation grids, training and
             evaluation budget. ``paper`` is the published set-up, ``quick`` is
             the whole reproduction at small scale (``icalign plan`` estimates its time), ``smoke`` runs
             in seconds for tests. Every size lives in the profile, so a profile
             can be retuned in one place; settings of registered experiments go
             into ``profile.extra[key]`` (see ``Experiment.settings``).
TrainSpec    a model config plus every training argument. Two experiments that
             ask for the same TrainSpec share one trained model, trained once per
             profile and output directory.

The set-up is described in ``docs/math.md`` ("Training").
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Optional

from .baselines import DEFAULT_T
from .config import ModelConfig
from .task import AlignmentTask

NOISE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)

# Throughput assumed when sizing profiles: ~500 GFLOP/s peak of 2 modern cores
# (AVX-512 FMA) at ~35% efficiency, which the optimised C kernels target. The
# runner prints estimates with this number and measures the real rate as it goes.
ASSUMED_PEAK_FLOPS = 500e9
ASSUMED_EFFICIENCY = 0.35


# ====================================================================== costs
def train_flops_per_step(config: ModelConfig, batch_size: int) -> float:
    """Floating-point operations of one training step (forward + backward).

    Dense layers: ~6 flops per weight per token (2 forward, 4 backward), with
    per layer 3E^2 + E^2 attention weights and 8E^2 MLP weights (FFN only).
    Attention scores and the weighted sum: 2 matmuls of 2*T^2*hs flops per head
    per sequence forward, i.e. 4*T^2*E, times 3 for forward + backward (the
    causal mask is ignored: the kernels compute full blocks). LayerNorm, GELU,
    softmax, the loss and read-in/out are O(T*E) and left out.

    Parameters
    ----------
    config : ModelConfig
        The model (E = n_embd, L = n_layer, T = 3 * n_points tokens).
    batch_size : int
        Sequences per step.

    Returns
    -------
    float

    Examples
    --------
    >>> import icalign as ica
    >>> from icalign.profiles import train_flops_per_step
    >>> train_flops_per_step(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2), 1)
    622080.0
    >>> f"{train_flops_per_step(ica.ModelConfig(), 256):.3g}"   # the paper's model
    '2.25e+11'
    """
    E, L, T = config.n_embd, config.n_layer, 3 * config.n_points
    weights_per_layer = 4 * E * E + (8 * E * E if config.ffn else 0)
    dense = 6.0 * weights_per_layer * L * batch_size * T
    attention = 12.0 * batch_size * T * T * E * L
    return dense + attention


def assumed_flops_per_second() -> float:
    """The throughput estimates assume: ``ASSUMED_PEAK_FLOPS * ASSUMED_EFFICIENCY``."""
    return ASSUMED_PEAK_FLOPS * ASSUMED_EFFICIENCY


def estimated_seconds(flops: float) -> float:
    """Seconds that ``flops`` operations take at the assumed throughput.

    A planning estimate (``assumed_flops_per_second``); the runner measures the
    real rate as it goes.

    Parameters
    ----------
    flops : float
        Floating-point operations, e.g. ``TrainSpec.flops()``.

    Returns
    -------
    float

    Examples
    --------
    >>> from icalign.profiles import (PROFILES, assumed_flops_per_second,
    ...                               estimated_seconds, format_seconds)
    >>> estimated_seconds(2 * assumed_flops_per_second())
    2.0
    >>> spec = PROFILES["smoke"].train_spec()
    >>> format_seconds(estimated_seconds(spec.flops()))
    '0s'
    """
    return flops / assumed_flops_per_second()


def format_seconds(s: float) -> str:
    """'42s', '3m05s', '1h02m'; '?' for a non-finite value."""
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# ====================================================================== specs
@dataclass(frozen=True)
class TrainSpec:
    """A model config and every argument of ``train`` that shapes the result.

    ``name`` is readable and unique: the shape plus a hash of everything.
    Frozen and hashable; ``Profile.train_spec`` builds the profile's recipe.

    Parameters
    ----------
    config : ModelConfig
        The model.
    steps, batch_size, lr, seed, lr_schedule, objective, reward, reward_noise, reward_weight
        The arguments of ``train`` of the same names (``train_kwargs`` passes
        them on).

    Examples
    --------
    >>> import icalign as ica
    >>> from icalign.profiles import TrainSpec
    >>> spec = TrainSpec(ica.ModelConfig(n_embd=8, n_layer=1, n_head=2), steps=3,
    ...                  batch_size=4, lr=1e-3)
    >>> spec.name                                  # doctest: +ELLIPSIS
    'E8-L1-H2-...'
    >>> spec.train_kwargs()["lr"], spec.replace(steps=6).name == spec.name
    (0.001, False)
    >>> TrainSpec.from_dict(spec.to_dict()) == spec
    True
    >>> model = ica.Transformer(spec.config)
    >>> len(ica.train(model, ica.AlignmentTask(), progress=False, **spec.train_kwargs()))
    3
    """

    config: ModelConfig
    steps: int
    batch_size: int
    lr: float
    seed: int = 0
    lr_schedule: Optional[str] = None
    objective: str = "pl"
    reward: str = "cosine"
    reward_noise: float = 0.0
    reward_weight: float = 1.0

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict (the config as ``ModelConfig.to_dict``)."""
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSpec":
        """Inverse of ``to_dict``."""
        d = dict(d)
        d["config"] = ModelConfig.from_dict(d["config"])
        return cls(**d)

    @property
    def name(self) -> str:
        """'E{n_embd}-L{n_layer}-H{n_head}', its variant flags and 8 hex digits of a
        hash of every field."""
        c = self.config
        parts = [f"E{c.n_embd}", f"L{c.n_layer}", f"H{c.n_head}"]
        if not c.softmax:
            parts.append("linear")
        if not c.ffn:
            parts.append("noffn")
        if not c.causal:
            parts.append("noncausal")
        if c.reward_head:
            parts.append("rh")
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
        return "-".join(parts) + "-" + digest[:8]

    def train_kwargs(self) -> dict:
        """The keyword arguments of ``train`` (all but model, task and I/O)."""
        return dict(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                    lr_schedule=self.lr_schedule, objective=self.objective, reward=self.reward,
                    reward_noise=self.reward_noise, reward_weight=self.reward_weight)

    def flops(self) -> float:
        """Floating-point operations of the whole training (``train_flops_per_step``)."""
        return train_flops_per_step(self.config, self.batch_size) * self.steps

    def replace(self, **changes) -> "TrainSpec":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


# ====================================================================== profiles
@dataclass
class Profile:
    """All sizes of one reproduction. The default model is
    (n_embd, n_layer, n_head); the ablations vary one thing around it, so it
    must be the deepest of ``depths`` and belong to both head series.

    The registered profiles ('paper', 'quick', 'smoke') are in ``PROFILES``
    and described in docs/math.md, section "Training".

    Parameters
    ----------
    name, description : str
        Name (``--profile``) and one line for listings.
    n_dims, n_points, n_embd, n_layer, n_head : int
        The default model's shape (``default_config``).
    depths : tuple of int
        Depths of the depth ablation (``depth_series``).
    heads : tuple of int
        Head counts of the two head series (``head_series``): at head size
        ``head_size`` (width grows with the heads) and at width ``fixed_embd``.
    head_size, fixed_embd : int
        See ``heads``.
    steps, batch_size, lr, lr_schedule, train_seed : int, int, float, str or None, int
        The training recipe (``train_spec``).
    eval_size, eval_seed : int
        The evaluation set (``evaluation_set``).
    gd_steps, gd_lr, gd_seed : int, float, int
        The GD baseline (``gd_steps_at`` scales its steps with reward noise).
    noise_levels : tuple of float
        Reward-noise levels of the noise sweep.
    checkpoint_every : float
        Seconds between training checkpoints.
    extra : dict
        Settings of registered experiments, by key (``Experiment.settings``).

    Raises
    ------
    ValueError
        If the default model is not the deepest of ``depths``, does not
        belong to both head series, ``fixed_embd`` is not divisible by every
        head count, or ``n_points`` is too small for the evaluated t.

    Examples
    --------
    >>> from icalign.profiles import PROFILES, Profile
    >>> quick = PROFILES["quick"]
    >>> c = quick.default_config()
    >>> c.n_embd, c.n_layer, c.n_head, quick.depths
    (36, 8, 3, (2, 4, 6, 8))
    >>> quick.train_spec(reward_weight=10.0).reward_weight
    10.0
    >>> Profile("tiny", "a bad profile", n_layer=3)
    Traceback (most recent call last):
        ...
    ValueError: profile 'tiny': n_layer (3) must be the largest of depths (5, 10, 15, 20), so the default model is shared
    """

    name: str
    description: str
    # The default model's shape. These fields mirror ModelConfig's on purpose: a profile
    # names sizes, default_config() builds the one ModelConfig they describe.
    n_dims: int = 5
    n_points: int = 20
    n_embd: int = 96
    n_layer: int = 20
    n_head: int = 3
    depths: tuple = (5, 10, 15, 20)
    heads: tuple = (1, 3, 4, 6)
    head_size: int = 32          # first head series: n_embd = heads * head_size
    fixed_embd: int = 96         # second head series: n_embd fixed
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-4
    lr_schedule: Optional[str] = None
    train_seed: int = 0
    # 5000 evaluation tasks keep every curve's task-sampling standard error at t = 15
    # below 0.005 (the widest per-task spread, the mean response's, is 0.31: see
    # icalign.seeds.WORST_TASK_SD_T15)
    eval_size: int = 5000
    eval_seed: int = 0
    gd_steps: int = 50
    gd_lr: float = 0.1
    gd_seed: int = 0
    noise_levels: tuple = NOISE_LEVELS
    checkpoint_every: float = 120.0
    extra: dict = field(default_factory=dict)  # settings of registered experiments, by key

    def __post_init__(self):
        if self.n_layer != max(self.depths):
            raise ValueError(f"profile {self.name!r}: n_layer ({self.n_layer}) must be the "
                             f"largest of depths {self.depths}, so the default model is shared")
        if self.n_embd != self.fixed_embd or self.n_embd != self.n_head * self.head_size \
                or self.n_head not in self.heads:
            raise ValueError(f"profile {self.name!r}: the default model (n_embd {self.n_embd}, "
                             f"n_head {self.n_head}) must belong to both head series "
                             f"(heads {self.heads} x head_size {self.head_size}, and "
                             f"n_embd {self.fixed_embd})")
        for h in self.heads:
            if self.fixed_embd % h:
                raise ValueError(f"profile {self.name!r}: fixed_embd {self.fixed_embd} is not "
                                 f"divisible by {h} heads")
        if self.n_points < max(DEFAULT_T) + 1:
            raise ValueError(f"profile {self.name!r}: n_points must be >= {max(DEFAULT_T) + 1} "
                             f"to evaluate t up to {max(DEFAULT_T)}")

    def default_config(self) -> ModelConfig:
        """The default model's ModelConfig."""
        return ModelConfig(n_dims=self.n_dims, n_points=self.n_points, n_embd=self.n_embd,
                           n_layer=self.n_layer, n_head=self.n_head)

    def train_spec(self, config: Optional[ModelConfig] = None, **overrides) -> TrainSpec:
        """The profile's training recipe for ``config`` (default model if None);
        ``overrides`` change any TrainSpec field (e.g. reward_weight, steps)."""
        spec = TrainSpec(config=config or self.default_config(), steps=self.steps,
                         batch_size=self.batch_size, lr=self.lr, seed=self.train_seed,
                         lr_schedule=self.lr_schedule)
        return spec.replace(**overrides) if overrides else spec

    def gd_steps_at(self, p: float) -> int:
        """GD steps at reward noise p: int(50 - 25 p) as in the published noise
        sweep (scaled the same way if gd_steps is not 50)."""
        return int(self.gd_steps * (1.0 - 0.5 * p))

    def task(self) -> AlignmentTask:
        """The task family (n_dims, n_points) of the profile."""
        return AlignmentTask(self.n_dims, self.n_points)

    def to_dict(self) -> dict:
        """Every field as a JSON-able dict."""
        d = dataclasses.asdict(self)
        d["extra"] = json.loads(json.dumps(self.extra, default=str))
        return d

    def fingerprint(self, experiment: str, settings: Optional[str] = None) -> str:
        """Changes whenever a setting that affects ``experiment``'s results changes:
        every size of the profile and ``extra[settings]`` (default key: the
        experiment's name), but not the settings of other experiments."""
        d = self.to_dict()
        d.pop("description")
        d.pop("checkpoint_every")
        d["extra"] = d["extra"].get(experiment if settings is None else settings)
        d["experiment"] = experiment
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ====================================================================== model series
def depth_series(profile: Profile) -> list:
    """[(label, config)]: the default model at every depth of ``profile.depths``."""
    return [(f"layers={d}", profile.default_config().replace(n_layer=d)) for d in profile.depths]


def head_series(profile: Profile) -> dict:
    """{series title: [(label, config)]}: heads at fixed head size (width varies), and
    at fixed n_embd. The default model belongs to both and is trained once.

    Examples
    --------
    >>> from icalign.profiles import PROFILES, head_series
    >>> series = head_series(PROFILES["quick"])
    >>> list(series)
    ['head size 12', 'n_embd 36']
    >>> [label for label, config in series["head size 12"]]
    ['heads=1 (E=12)', 'heads=3 (E=36)', 'heads=4 (E=48)', 'heads=6 (E=72)']
    """
    p = profile
    base = p.default_config()
    by_size = [(f"heads={h} (E={h * p.head_size})",
                base.replace(n_head=h, n_embd=h * p.head_size)) for h in p.heads]
    by_embd = [(f"heads={h} (E={p.fixed_embd})", base.replace(n_head=h, n_embd=p.fixed_embd))
               for h in p.heads]
    return {f"head size {p.head_size}": by_size, f"n_embd {p.fixed_embd}": by_embd}


# ====================================================================== the profiles
PROFILES: dict[str, Profile] = {}


def register_profile(profile: Profile) -> Profile:
    """Add ``profile`` to ``PROFILES`` under its name (replacing one of that name)."""
    PROFILES[profile.name] = profile
    return profile


register_profile(Profile(
    name="paper",
    description="the published set-up: E 96, 20 layers, 3 heads, Adam lr 1e-4, batch 256, "
                "3000 steps; depth 5/10/15/20; heads 1/3/4/6 at head size 32 and at E 96",
))

# quick: every ablation of the paper at 3/8 width and 2/5 depth, 3000 steps of 64
# sequences (1/4 of the paper's sequences) at a constant lr of 5e-4. Why: these
# models sit on a loss plateau (PL loss ~17.7 at N = 20) until an abrupt
# transition to in-context alignment (~14.7). In development runs at batch 64 the
# transition came after ~600-2100 steps depending on width, depth, seed and lr;
# 1200 steps left most models untrained, so the ablations compared noise. At lr
# 1e-3 the wider models (E 48, 72) never left the plateau; 5e-4 trained them all
# but the smallest. E 36 (divisible by 1/3/4/6 heads; head size 12) costs half of
# E 48, which buys every model 3000 steps: the 13 models of panels a-f and the
# self-critic trained in ~10 minutes on 2 cores (~245 GFLOP/s measured). `icalign plan`
# prints the estimate for the registered set, probed on the machine at hand.
register_profile(Profile(
    name="quick",
    description="paper's ablations at smaller scale (E 36, 8 layers, 3 heads of size 12; "
                "depth 2/4/6/8; heads 1/3/4/6 at head size 12 and at E 36), 3000 steps of "
                "batch 64, Adam lr 5e-4 (constant)",
    n_embd=36, n_layer=8, n_head=3, depths=(2, 4, 6, 8), heads=(1, 3, 4, 6), head_size=12,
    fixed_embd=36, steps=3000, batch_size=64, lr=5e-4, lr_schedule=None, eval_size=5000,
    checkpoint_every=60.0,
))

# smoke: tiny models and a few steps, for tests; results are meaningless.
register_profile(Profile(
    name="smoke",
    description="tiny models, 3 steps: exercises every code path in seconds; numbers mean "
                "nothing",
    n_embd=8, n_layer=2, n_head=2, depths=(1, 2), heads=(1, 2), head_size=4, fixed_embd=8,
    steps=3, batch_size=8, lr=1e-3, eval_size=32, checkpoint_every=30.0,
))
