"""The transformer of docs/math.md, section "The model and its token layout", as a
Python object over the C model."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from . import _core
from ._validation import check_float, check_int, check_str
from .config import ModelConfig


def _check_loss_args(objective, reward, reward_weight) -> float:
    """Types of the loss options; the values are checked by the C core."""
    check_str("objective", objective)
    check_str("reward", reward)
    return check_float("reward_weight", reward_weight)


class Transformer:
    """GPT-2 (pre-LN) over (x, y, r) triplets, with GPT-2 initialisation.

    Parameters, gradients and Adam moments live in one C arena; ``state_dict``
    returns float32 copies of the named slices (names, shapes and
    initialisation in docs/math.md, section "The model and its token layout").
    Every call validates its arrays and raises ``ValueError``/``TypeError``
    naming the argument, its shape or dtype and what was expected. Results do
    not depend on the number of threads.

    Parameters
    ----------
    config : ModelConfig
        Shape of the model.
    seed : int, default 0
        Seed of the initialisation; each tensor is drawn from its own stream.

    Attributes
    ----------
    config : ModelConfig
        The config the model was built with.
    seed : int
        The initialisation seed.

    Raises
    ------
    TypeError
        If ``config`` is not a ModelConfig.
    ValueError
        If ``seed`` is not an int >= 0.

    Examples
    --------
    >>> import icalign as ica
    >>> cfg = ica.ModelConfig(n_dims=5, n_points=20, n_embd=12, n_layer=2, n_head=3)
    >>> model = ica.Transformer(cfg, seed=0)
    >>> model
    Transformer(n_embd=12, n_layer=2, n_head=3, softmax=True, ffn=True, causal=True, params=4,649)
    >>> batch = ica.AlignmentTask(n_dims=5, n_points=20).sample(4, seed=0)
    >>> model.predict(batch.xs, batch.ys, batch.rs).shape
    (4, 20, 5)
    """

    def __init__(self, config: ModelConfig, seed: int = 0):
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be an icalign.ModelConfig, got {type(config).__name__}")
        check_int("seed", seed, 0, 2**64, span=" in [0, 2**64)")
        self.config = config
        self.seed = int(seed)
        c = config
        self._core = _core.Model(c.n_dims, c.n_points, c.n_embd, c.n_layer, c.n_head,
                                 c.softmax, c.ffn, c.causal, c.reward_head, int(seed),
                                 layernorm=c.layernorm)
        self._table = [(name, tuple(shape), offset) for name, shape, offset
                       in self._core.tensors()]

    # ------------------------------------------------------------------ parameters
    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters (the sum of the tensors' sizes)."""
        return sum(int(np.prod(shape)) for _, shape, _ in self._table)

    def parameter_names(self) -> list[str]:
        """Names of the parameter tensors, in storage order.

        Examples
        --------
        >>> import icalign as ica
        >>> model = ica.Transformer(ica.ModelConfig(n_embd=12, n_layer=1, n_head=3))
        >>> model.parameter_names()[:4]
        ['read_in.weight', 'read_in.bias', 'wpe', 'h.0.ln_1.weight']
        >>> len(model.parameter_names())
        19
        """
        return [name for name, _, _ in self._table]

    def _slices(self, arena: np.ndarray) -> dict[str, np.ndarray]:
        return {name: arena[off:off + int(np.prod(shape))].reshape(shape)
                for name, shape, off in self._table}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters.

        Returns
        -------
        dict of str to numpy.ndarray
            ``{name: float32 array}`` in storage order (docs/math.md, section
            "The model and its token layout"); dense weights are ``(in, out)``.
            The arrays are copies: changing them does not change the model.

        Examples
        --------
        >>> import icalign as ica
        >>> model = ica.Transformer(ica.ModelConfig(n_embd=12, n_layer=1, n_head=3))
        >>> sd = model.state_dict()
        >>> sd["h.0.attn.c_attn.weight"].shape, sd["wpe"].shape
        ((12, 36), (60, 12))
        >>> float(sd["h.0.ln_1.weight"].min()), float(sd["h.0.ln_1.bias"].max())
        (1.0, 0.0)
        """
        return {name: view.copy() for name, view in self._slices(self._core.params).items()}

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray]) -> None:
        """Load parameters; names and shapes must match exactly.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            One real numeric array per parameter name, of the parameter's
            shape and finite; values are converted to float32.

        Raises
        ------
        ValueError
            If entries are missing, unexpected, mis-shaped, not real numeric
            or non-finite. All problems are listed together in one error, and
            nothing is written unless every entry is valid.

        Examples
        --------
        >>> import icalign as ica
        >>> cfg = ica.ModelConfig(n_embd=12, n_layer=1, n_head=3)
        >>> a, b = ica.Transformer(cfg, seed=0), ica.Transformer(cfg, seed=1)
        >>> b.load_state_dict(a.state_dict())
        >>> bool((b.state_dict()["wpe"] == a.state_dict()["wpe"]).all())
        True
        >>> b.load_state_dict({"wpe": a.state_dict()["wpe"][:3]})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        ValueError: load_state_dict: missing entries [...], bad entries [wpe: shape (3, 12), expected (60, 12)]
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: state_dict must be a mapping of parameter names "
                            f"to arrays, got {type(state_dict).__name__}")
        expected = {name: shape for name, shape, _ in self._table}
        missing = [n for n in expected if n not in state_dict]
        unexpected = [n for n in state_dict if not isinstance(n, str) or n not in expected]
        converted, problems = {}, []
        for name, shape in expected.items():
            if name not in state_dict:
                continue
            try:
                arr = np.asarray(state_dict[name])
            except Exception as exc:  # noqa: BLE001 - reported with the name
                problems.append(f"{name}: cannot convert to an array ({exc})")
                continue
            if arr.dtype.kind not in "biuf":
                problems.append(f"{name}: dtype {arr.dtype} is not real numeric")
            elif arr.shape != shape:
                problems.append(f"{name}: shape {arr.shape}, expected {shape}")
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    as32 = arr.astype(np.float32, copy=False)
                if not np.all(np.isfinite(as32)):
                    beyond = " (beyond the float32 range)" if np.all(np.isfinite(arr)) else ""
                    problems.append(f"{name}: holds non-finite values{beyond}")
                else:
                    converted[name] = as32
        if missing or unexpected or problems:
            parts = []
            if missing:
                parts.append(f"missing entries {missing}")
            if unexpected:
                parts.append(f"unexpected entries {unexpected}")
            if problems:
                parts.append("bad entries [" + "; ".join(problems) + "]")
            raise ValueError("load_state_dict: " + ", ".join(parts))
        views = self._slices(self._core.params)
        for name, arr in converted.items():
            views[name][...] = arr

    # -------------------------------------------------------------- optimiser state
    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Adam moments and step count (copies), for checkpoints.

        Returns
        -------
        dict
            ``adam_m`` and ``adam_v``: float32 arrays over the flat parameter
            arena (which pads each tensor to 16 floats, so they may be longer
            than ``num_parameters``); ``adam_steps``: the number of updates.
        """
        return {"adam_m": self._core.adam_m.copy(), "adam_v": self._core.adam_v.copy(),
                "adam_steps": np.int64(self._core.adam_steps)}

    def load_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what ``optimizer_state`` returned.

        Parameters
        ----------
        state : mapping
            ``adam_m``, ``adam_v`` (arrays of the arena's length) and
            ``adam_steps`` (int).

        Raises
        ------
        KeyError
            If a key is missing.
        ValueError
            If a moment array has the wrong shape.
        """
        n = self._core.params.shape[0]
        for key in ("adam_m", "adam_v"):
            arr = np.asarray(state[key])
            if arr.shape != (n,):
                raise ValueError(f"optimizer state {key} has shape {arr.shape}, expected ({n},)")
        self._core.adam_m[...] = state["adam_m"]
        self._core.adam_v[...] = state["adam_v"]
        self._core.adam_steps = int(state["adam_steps"])

    # -------------------------------------------------------------------- compute
    def predict(self, xs, ys, rs, batch_size: int = 512) -> np.ndarray:
        """Predictions at every x-token.

        The prediction at example n is read at the x-token of example n,
        which (in a causal model) sees examples 0..n-1 and x_n
        (docs/math.md, section "The model and its token layout").

        Parameters
        ----------
        xs, ys : array_like, shape (B, N, d)
            Queries and responses; N may be anything up to
            ``config.n_points``. Real numeric dtypes are converted to float32.
        rs : array_like, shape (B, N) or (B, N, 1)
            Shown rewards.
        batch_size : int, default 512
            Large batches run in chunks of this many sequences to bound
            memory; the result does not depend on it.

        Returns
        -------
        numpy.ndarray, shape (B, N, d), float32

        Raises
        ------
        ValueError
            If shapes do not match the config, N is outside
            [1, n_points], an input is non-finite, ``batch_size`` < 1, or the
            prediction overflows.
        TypeError
            If an input is not real numeric.

        Examples
        --------
        >>> import icalign as ica
        >>> model = ica.Transformer(ica.ModelConfig(n_embd=12, n_layer=2, n_head=3))
        >>> b = ica.AlignmentTask().sample(3, seed=0)
        >>> pred = model.predict(b.xs, b.ys, b.rs)
        >>> pred.shape, pred.dtype
        ((3, 20, 5), dtype('float32'))

        Causality: the prediction at example 4 does not depend on later examples.

        >>> short = model.predict(b.xs[:, :5], b.ys[:, :5], b.rs[:, :5])
        >>> bool(abs(short[:, 4] - pred[:, 4]).max() < 1e-5)
        True
        """
        return self._forward_chunks(xs, ys, rs, batch_size)[0]

    def predict_rewards(self, xs, ys, rs, batch_size: int = 512) -> np.ndarray:
        """The reward head's estimate of each response's shown reward.

        Read at the y-token of example n: it sees x_n, y_n and earlier
        triplets, not r_n.

        Parameters
        ----------
        xs, ys, rs : array_like
            Queries, responses and shown rewards, as for ``predict``.
        batch_size : int, default 512
            Sequences per chunk, as for ``predict``.

        Returns
        -------
        numpy.ndarray, shape (B, N), float32

        Raises
        ------
        ValueError
            If the model was not built with ``reward_head=True``, or as for
            ``predict``.

        Examples
        --------
        >>> import icalign as ica
        >>> cfg = ica.ModelConfig(n_embd=12, n_layer=1, n_head=3, reward_head=True)
        >>> b = ica.AlignmentTask().sample(2, seed=0)
        >>> ica.Transformer(cfg).predict_rewards(b.xs, b.ys, b.rs).shape
        (2, 20)
        """
        if not self.config.reward_head:
            raise ValueError("predict_rewards needs a model built with "
                             "ModelConfig(reward_head=True)")
        return self._forward_chunks(xs, ys, rs, batch_size)[1]

    def _forward_chunks(self, xs, ys, rs, batch_size):
        batch_size = check_int("batch_size", batch_size, 1)
        xs, ys, rs = (np.asarray(a) for a in (xs, ys, rs))
        B = xs.shape[0] if xs.ndim == 3 else 0
        if B > batch_size and ys.ndim >= 1 and rs.ndim >= 1 and ys.shape[0] == rs.shape[0] == B:
            pred = rhat = None
            for i in range(0, B, batch_size):
                p, r = self._core.forward(xs[i:i + batch_size], ys[i:i + batch_size],
                                          rs[i:i + batch_size])
                if pred is None:  # the whole output up front: a MemoryError now, not hours on
                    pred = np.empty((B,) + p.shape[1:], dtype=np.float32)
                    rhat = None if r is None else np.empty((B,) + r.shape[1:], dtype=np.float32)
                pred[i:i + len(p)] = p
                if r is not None:
                    rhat[i:i + len(r)] = r
            return pred, rhat
        return self._core.forward(xs, ys, rs)

    def attention_maps(self, xs, ys, rs, batch_size: int = 64) -> np.ndarray:
        """Attention weights of the C forward pass.

        Row t of block (b, l, h) holds the weights that token t of sequence b
        gives every token in head h of block l: a probability distribution
        (softmax attention), zero where the causal mask hides a token. With
        linear attention (``softmax=False``) the rows are the masked scaled
        scores that multiply the values.

        Parameters
        ----------
        xs, ys : array_like, shape (B, N, d)
            Queries and responses, N up to ``config.n_points``.
        rs : array_like, shape (B, N) or (B, N, 1)
            Shown rewards.
        batch_size : int, default 64
            Sequences per call of the C core (bounds its activation memory);
            the result does not depend on it.

        Returns
        -------
        numpy.ndarray, shape (B, n_layer, n_head, 3N, 3N), float32

        Examples
        --------
        >>> import numpy as np
        >>> import icalign as ica
        >>> model = ica.Transformer(ica.ModelConfig(n_embd=12, n_layer=2, n_head=3))
        >>> b = ica.AlignmentTask(n_points=4).sample(2, seed=0)
        >>> maps = model.attention_maps(b.xs, b.ys, b.rs)
        >>> maps.shape
        (2, 2, 3, 12, 12)
        >>> bool(np.allclose(maps.sum(-1), 1.0, atol=1e-5)), float(np.triu(maps, 1).max())
        (True, 0.0)
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        xs, ys, rs = (np.asarray(a) for a in (xs, ys, rs))
        if xs.ndim == 3 and xs.shape[0] > batch_size:
            return np.concatenate([self._core.attention_maps(xs[i:i + batch_size],
                                                             ys[i:i + batch_size],
                                                             rs[i:i + batch_size])
                                   for i in range(0, xs.shape[0], batch_size)])
        return self._core.attention_maps(xs, ys, rs)

    def loss_and_grad(self, xs, ys, rs, objective: str = "pl", reward: str = "cosine",
                      reward_weight: float = 1.0) -> tuple[float, dict[str, np.ndarray]]:
        """Training loss and its gradient with respect to every parameter.

        The loss is the sequence objective of docs/math.md, section "Losses
        and their gradients" (the prediction at each example n = 2..N-1
        scored against the first n pairs, averaged over n and the batch).
        With ``reward_head=True`` it adds ``reward_weight`` times the mean
        squared error of the reward head against the shown rewards.

        Parameters
        ----------
        xs, ys : array_like, shape (B, N, d)
            Queries and responses, 3 <= N <= ``config.n_points``.
        rs : array_like, shape (B, N) or (B, N, 1)
            Shown rewards (they rank the responses).
        objective : {'pl', 'bt'}, default 'pl'
            Plackett-Luce or Bradley-Terry.
        reward : {'cosine', 'neg_sq'}, default 'cosine'
            Policy reward scoring a prediction against a response.
        reward_weight : float, default 1.0
            Weight of the reward-head loss (ignored without a reward head).

        Returns
        -------
        loss : float
        grads : dict of str to numpy.ndarray
            ``{name: float32 array}`` shaped like ``state_dict()``.

        Raises
        ------
        ValueError
            If N < 3, an option is unknown, an input is invalid (as for
            ``predict``) or the loss is not finite.

        Examples
        --------
        >>> import icalign as ica
        >>> model = ica.Transformer(ica.ModelConfig(n_embd=12, n_layer=1, n_head=3))
        >>> b = ica.AlignmentTask().sample(4, seed=0)
        >>> loss, grads = model.loss_and_grad(b.xs, b.ys, b.rs)
        >>> 0.0 < loss < 20.0, grads["wpe"].shape
        (True, (60, 12))
        """
        reward_weight = _check_loss_args(objective, reward, reward_weight)
        loss = self._core.loss_and_grad(xs, ys, rs, objective=objective, reward=reward,
                                        reward_weight=reward_weight)
        grads = {name: view.copy() for name, view in self._slices(self._core.grads).items()}
        return loss, grads

    def step(self, xs, ys, rs, lr: float = 1e-4, objective: str = "pl", reward: str = "cosine",
             reward_weight: float = 1.0) -> float:
        """Forward, backward and one Adam update, all in C.

        Adam with betas 0.9/0.999, eps 1e-8, bias correction and no weight
        decay (docs/math.md, section "Training"); the moments live in the
        model and persist across calls.

        Parameters
        ----------
        xs, ys, rs, objective, reward, reward_weight
            As for ``loss_and_grad``.
        lr : float, default 1e-4
            Learning rate, finite and >= 0 (0 updates the moments only).

        Returns
        -------
        float
            The loss before the update.

        Raises
        ------
        ValueError
            As for ``loss_and_grad``, or if ``lr`` is negative or not finite.
        FloatingPointError
            If the loss or the update is not finite (divergence); the update is
            refused, the model is left as it was.

        Examples
        --------
        >>> import icalign as ica
        >>> model = ica.Transformer(ica.ModelConfig(n_embd=12, n_layer=1, n_head=3))
        >>> task = ica.AlignmentTask()
        >>> for s in range(3):
        ...     b = task.sample(8, seed=0, offset=8 * s)
        ...     loss = model.step(b.xs, b.ys, b.rs, lr=1e-3)
        >>> int(model.optimizer_state()["adam_steps"]), isinstance(loss, float)
        (3, True)
        """
        reward_weight = _check_loss_args(objective, reward, reward_weight)
        lr = check_float("lr", lr, 0.0)
        return self._core.step(xs, ys, rs, lr, objective=objective, reward=reward,
                               reward_weight=reward_weight)

    def __repr__(self) -> str:
        c = self.config
        return (f"Transformer(n_embd={c.n_embd}, n_layer={c.n_layer}, n_head={c.n_head}, "
                f"softmax={c.softmax}, ffn={c.ffn}, causal={c.causal}, "
                + ("" if c.layernorm else "layernorm=False, ")
                + f"params={self.num_parameters:,})")
