"""Model configuration (SPEC section 2 and 7)."""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from ._validation import check_int


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the GPT-2 model over (x, y, r) triplets.

    n_dims: width d of queries, responses and reward tokens.
    n_points: the most examples a sequence may hold (T = 3 * n_points tokens).
    n_embd, n_layer, n_head: width, depth and heads (n_embd % n_head == 0).
    softmax: softmax attention (True) or linear attention (False).
    ffn: blocks with LayerNorm + GELU MLP after attention.
    causal: causal attention mask (the default everywhere).
    reward_head: an extra read-out at the y-tokens that predicts the shown reward
        of each response from the context before it (the self-critic of the
        critic-quality experiments); off for the paper's models.
    """

    n_dims: int = 5
    n_points: int = 20
    n_embd: int = 96
    n_layer: int = 20
    n_head: int = 3
    softmax: bool = True
    ffn: bool = True
    causal: bool = True
    reward_head: bool = False

    def __post_init__(self):
        for name in ("n_dims", "n_points", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            check_int(f"ModelConfig.{name}", value, low=None, error=TypeError)
            if value < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {value}")
            object.__setattr__(self, name, int(value))
        for name in ("softmax", "ffn", "causal", "reward_head"):
            value = getattr(self, name)
            if not isinstance(value, (bool, numbers.Integral)) or value not in (0, 1):
                raise TypeError(f"ModelConfig.{name} must be a bool, got {value!r}")
            object.__setattr__(self, name, bool(value))
        if self.n_embd % self.n_head:
            raise ValueError(f"ModelConfig.n_embd ({self.n_embd}) must be divisible by "
                             f"n_head ({self.n_head}); head size would be "
                             f"{self.n_embd / self.n_head:g}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; expected a subset of "
                             f"{sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)
