"""Profiles (the sizes of one reproduction), training specs and the cost model.

Profile      the sizes of one reproduction: model, ablation grids, training and
             evaluation budget. ``paper`` is the published set-up, ``quick`` fits
             the whole reproduction in about 11 minutes on 2 cores, ``smoke`` runs
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
    """
    E, L, T = config.n_embd, config.n_layer, 3 * config.n_points
    weights_per_layer = 4 * E * E + (8 * E * E if config.ffn else 0)
    dense = 6.0 * weights_per_layer * L * batch_size * T
    attention = 12.0 * batch_size * T * T * E * L
    return dense + attention


def assumed_flops_per_second() -> float:
    return ASSUMED_PEAK_FLOPS * ASSUMED_EFFICIENCY


def estimated_seconds(flops: float) -> float:
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

    ``name`` is readable and unique: the shape plus a hash of everything."""

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
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSpec":
        d = dict(d)
        d["config"] = ModelConfig.from_dict(d["config"])
        return cls(**d)

    @property
    def name(self) -> str:
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
        return dict(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=self.seed,
                    lr_schedule=self.lr_schedule, objective=self.objective, reward=self.reward,
                    reward_noise=self.reward_noise, reward_weight=self.reward_weight)

    def flops(self) -> float:
        return train_flops_per_step(self.config, self.batch_size) * self.steps

    def replace(self, **changes) -> "TrainSpec":
        return dataclasses.replace(self, **changes)


# ====================================================================== profiles
@dataclass
class Profile:
    """All sizes of one reproduction. The default model is
    (n_embd, n_layer, n_head); the ablations vary one thing around it, so it
    must be the deepest of ``depths`` and belong to both head series."""

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
    eval_size: int = 2000
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
        return AlignmentTask(self.n_dims, self.n_points)

    def to_dict(self) -> dict:
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
    at fixed n_embd. The default model belongs to both and is trained once."""
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
# E 48, which buys every model 3000 steps: the 13 models train in ~10 minutes on
# 2 cores (~245 GFLOP/s measured), and `icalign reproduce` as a whole takes about
# 11 minutes. `icalign plan` prints the estimate for the registered set.
register_profile(Profile(
    name="quick",
    description="paper's ablations at smaller scale (E 36, 8 layers, 3 heads of size 12; "
                "depth 2/4/6/8; heads 1/3/4/6 at head size 12 and at E 36), 3000 steps of "
                "batch 64, Adam lr 5e-4 (constant)",
    n_embd=36, n_layer=8, n_head=3, depths=(2, 4, 6, 8), heads=(1, 3, 4, 6), head_size=12,
    fixed_embd=36, steps=3000, batch_size=64, lr=5e-4, lr_schedule=None, eval_size=2000,
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
