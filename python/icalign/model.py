"""The transformer of SPEC section 2 as a Python object over the C model."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from . import _core
from ._validation import check_int
from .config import ModelConfig


class Transformer:
    """GPT-2 (pre-LN) over (x, y, r) triplets, with GPT-2 initialisation.

    Parameters, gradients and Adam moments live in one C arena; ``state_dict``
    returns float32 copies of the named slices (names as in SPEC section 2).
    Every call validates its arrays and raises ``ValueError``/``TypeError``
    naming the argument, its shape or dtype and what was expected.
    """

    def __init__(self, config: ModelConfig, seed: int = 0):
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be an icalign.ModelConfig, got {type(config).__name__}")
        check_int("seed", seed, 0)
        self.config = config
        self.seed = int(seed)
        c = config
        self._core = _core.Model(c.n_dims, c.n_points, c.n_embd, c.n_layer, c.n_head,
                                 c.softmax, c.ffn, c.causal, c.reward_head, int(seed))
        self._table = [(name, tuple(shape), offset) for name, shape, offset
                       in self._core.tensors()]

    # ------------------------------------------------------------------ parameters
    @property
    def num_parameters(self) -> int:
        return sum(int(np.prod(shape)) for _, shape, _ in self._table)

    def parameter_names(self) -> list[str]:
        return [name for name, _, _ in self._table]

    def _slices(self, arena: np.ndarray) -> dict[str, np.ndarray]:
        return {name: arena[off:off + int(np.prod(shape))].reshape(shape)
                for name, shape, off in self._table}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, {name: float32 array}, in SPEC order."""
        return {name: view.copy() for name, view in self._slices(self._core.params).items()}

    def load_state_dict(self, state_dict: Mapping[str, np.ndarray]) -> None:
        """Load parameters; names and shapes must match exactly.

        All problems (missing, unexpected and mis-shaped entries, non-finite
        values) are listed together in one ValueError, and nothing is written
        unless every entry is valid.
        """
        expected = {name: shape for name, shape, _ in self._table}
        missing = [n for n in expected if n not in state_dict]
        unexpected = [n for n in state_dict if n not in expected]
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
            elif not np.all(np.isfinite(arr)):
                problems.append(f"{name}: holds non-finite values")
            else:
                converted[name] = arr.astype(np.float32, copy=False)
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
        """Adam moments and step count (copies), for checkpoints."""
        return {"adam_m": self._core.adam_m.copy(), "adam_v": self._core.adam_v.copy(),
                "adam_steps": np.int64(self._core.adam_steps)}

    def load_optimizer_state(self, state: Mapping[str, np.ndarray]) -> None:
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
        """Predictions at every x-token: (B, N, d) from xs, ys (B, N, d), rs (B, N).

        N may be anything up to ``config.n_points``; the prediction at example
        n sees examples 0..n-1 and x_n. Large batches run in chunks of
        ``batch_size`` sequences to bound memory.
        """
        return self._forward_chunks(xs, ys, rs, batch_size)[0]

    def predict_rewards(self, xs, ys, rs, batch_size: int = 512) -> np.ndarray:
        """The reward head's estimate (B, N) of each response's shown reward.

        Read at the y-token of example n: it sees x_n, y_n and earlier
        triplets, not r_n. Only for models built with ``reward_head=True``.
        """
        if not self.config.reward_head:
            raise ValueError("predict_rewards needs a model built with "
                             "ModelConfig(reward_head=True)")
        return self._forward_chunks(xs, ys, rs, batch_size)[1]

    def _forward_chunks(self, xs, ys, rs, batch_size):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        xs, ys, rs = (np.asarray(a) for a in (xs, ys, rs))
        if xs.ndim == 3 and xs.shape[0] > batch_size:
            parts = [self._core.forward(xs[i:i + batch_size], ys[i:i + batch_size],
                                        rs[i:i + batch_size])
                     for i in range(0, xs.shape[0], batch_size)]
            pred = np.concatenate([p for p, _ in parts])
            rhat = np.concatenate([r for _, r in parts]) if parts[0][1] is not None else None
            return pred, rhat
        return self._core.forward(xs, ys, rs)

    def loss_and_grad(self, xs, ys, rs, objective: str = "pl", reward: str = "cosine",
                      reward_weight: float = 1.0) -> tuple[float, dict[str, np.ndarray]]:
        """Training loss (SPEC section 3) and its gradient, {name: float32 array}.

        With ``reward_head=True`` the loss adds ``reward_weight`` times the mean
        squared error of the reward head against the shown rewards.
        """
        loss = self._core.loss_and_grad(xs, ys, rs, objective=objective, reward=reward,
                                        reward_weight=reward_weight)
        grads = {name: view.copy() for name, view in self._slices(self._core.grads).items()}
        return loss, grads

    def step(self, xs, ys, rs, lr: float = 1e-4, objective: str = "pl", reward: str = "cosine",
             reward_weight: float = 1.0) -> float:
        """Forward, backward and one Adam update (betas 0.9/0.999, eps 1e-8), all in C.

        Returns the loss before the update.
        """
        return self._core.step(xs, ys, rs, lr, objective=objective, reward=reward,
                               reward_weight=reward_weight)

    def __repr__(self) -> str:
        c = self.config
        return (f"Transformer(n_embd={c.n_embd}, n_layer={c.n_layer}, n_head={c.n_head}, "
                f"softmax={c.softmax}, ffn={c.ffn}, causal={c.causal}, "
                f"params={self.num_parameters:,})")
