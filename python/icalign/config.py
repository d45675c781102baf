"""Model configuration (see docs/math.md, section "The model and its token layout")."""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from ._validation import check_int


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the GPT-2 model over (x, y, r) triplets.

    The model, its token layout and its parameters are described in
    docs/math.md, section "The model and its token layout". A config is
    immutable and hashable; two configs are equal when every field is.

    Parameters
    ----------
    n_dims : int, default 5
        Width d of queries, responses and reward tokens.
    n_points : int, default 20
        The most examples a sequence may hold (T = 3 * n_points tokens, the
        rows of the position embedding).
    n_embd : int, default 96
        Model width E; must be divisible by ``n_head``.
    n_layer : int, default 20
        Number of transformer blocks.
    n_head : int, default 3
        Attention heads, each of size ``n_embd // n_head``.
    softmax : bool, default True
        Softmax attention (True) or linear attention (False: masked scaled
        scores used as weights, without normalisation).
    ffn : bool, default True
        Blocks with LayerNorm + GELU MLP after attention.
    causal : bool, default True
        Causal attention mask (the default everywhere).
    reward_head : bool, default False
        An extra read-out at the y-tokens that predicts the shown reward of
        each response from the context before it (the self-critic of the
        critic-quality experiments); off for the paper's models.
    layernorm : bool, default True
        LayerNorm in every block and before the read-out. False keeps only
        each LayerNorm's affine map ``x * weight + bias`` (no centring or
        scaling; same parameters), as the hand-built models of
        ``icalign.theory`` need.

    Raises
    ------
    TypeError
        If a size is not an int (bools are refused) or a flag is not a bool
        (0 and 1 are accepted).
    ValueError
        If a size is below 1, or ``n_embd`` is not divisible by ``n_head``.

    Examples
    --------
    >>> import icalign as ica
    >>> cfg = ica.ModelConfig(n_dims=5, n_points=20, n_embd=12, n_layer=2, n_head=3)
    >>> cfg.head_size
    4
    >>> cfg.replace(ffn=False).ffn
    False
    >>> ica.ModelConfig(n_embd=10, n_head=3)
    Traceback (most recent call last):
        ...
    ValueError: ModelConfig.n_embd (10) must be divisible by n_head (3); head size would be 3.33333
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
    layernorm: bool = True

    def __post_init__(self):
        for name in ("n_dims", "n_points", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            check_int(f"ModelConfig.{name}", value, low=None, error=TypeError)
            if value < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {value}")
            if value > 2**31 - 1:
                raise ValueError(f"ModelConfig.{name} must be <= 2**31 - 1, got {value}")
            object.__setattr__(self, name, int(value))
        for name in ("softmax", "ffn", "causal", "reward_head", "layernorm"):
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
        """Size of each attention head, ``n_embd // n_head``."""
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict.

        Returns
        -------
        dict
            ``{field name: value}`` for every field; ``from_dict`` inverts it.
            ``layernorm`` is left out at its default (True), so the names and
            fingerprints of models (hashes of this dict) stay those of the
            models trained before the option existed.

        Examples
        --------
        >>> import icalign as ica
        >>> cfg = ica.ModelConfig(n_embd=12, n_layer=2, n_head=3)
        >>> cfg.to_dict()["n_embd"]
        12
        >>> ica.ModelConfig.from_dict(cfg.to_dict()) == cfg
        True
        """
        d = dataclasses.asdict(self)
        if d["layernorm"]:
            del d["layernorm"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Build a config from a dict such as ``to_dict`` writes.

        Parameters
        ----------
        d : dict
            Any subset of the fields; missing fields take their defaults.

        Returns
        -------
        ModelConfig

        Raises
        ------
        ValueError
            If ``d`` holds a key that is not a field (or a value is invalid,
            as for the constructor; wrong types raise TypeError).

        Examples
        --------
        >>> import icalign as ica
        >>> ica.ModelConfig.from_dict({"n_embd": 12, "n_head": 3}).head_size
        4
        >>> ica.ModelConfig.from_dict({"width": 12})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: unknown ModelConfig fields ['width']; expected a subset of [...]
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}; expected a subset of "
                             f"{sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> "ModelConfig":
        """A copy with some fields changed (validated like a new config).

        Parameters
        ----------
        **changes
            New values of fields, by name.

        Returns
        -------
        ModelConfig

        Raises
        ------
        TypeError
            If a name is not a field, or a value has the wrong type.
        ValueError
            If a value is invalid.

        Examples
        --------
        >>> import icalign as ica
        >>> ica.ModelConfig(n_embd=12, n_head=3).replace(n_head=4).head_size
        3
        """
        return dataclasses.replace(self, **changes)
