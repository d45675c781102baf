"""PyTorch implementation of the icalign model and alignment losses (SPEC §2-§4).

Used for two things:

* tests compare the C core (``icalign``) against it when torch is installed
  (load the C model's ``state_dict()`` with :meth:`TorchModel.load_numpy_state_dict`
  and compare predictions, losses and :meth:`TorchModel.numpy_grads`);
* ``benchmarks/bench_step.py`` times one training step of it against the C core, so it
  is written the way a competent PyTorch user would write it: vectorised over batch,
  prefixes and pairs, ``scaled_dot_product_attention`` for softmax attention, plain
  eager mode, ``torch.optim.Adam``.

Every dense weight is stored ``(in, out)`` so that ``y = x @ W + b`` and all parameter
names match the C core's ``state_dict`` names exactly.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Dense",
    "LayerNorm",
    "Attention",
    "MLP",
    "Block",
    "TorchModel",
    "reward_scores",
    "sequence_loss",
    "reward_head_loss",
    "gpt2_init_",
    "train_step",
    "numpy_forward_and_grads",
]

LN_EPS = 1e-5
COS_EPS = 1e-8
# Finite stand-in for -inf in masked log-sum-exps: exp(_NEG - anything finite) == 0
# exactly, and unlike -inf it never produces NaN in a backward pass.
_NEG = -1e30


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
class Dense(nn.Module):
    """``y = x @ weight + bias`` with ``weight`` stored ``(in, out)``."""

    def __init__(self, n_in: int, n_out: int, dtype=torch.float32):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_out, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.linear expects (out, in); the transposed view feeds straight into addmm.
        return F.linear(x, self.weight.t(), self.bias)


class LayerNorm(nn.Module):
    def __init__(self, n: int, dtype=torch.float32):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, LN_EPS)


class Attention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, softmax: bool = True,
                 causal: bool = True, dtype=torch.float32):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} not divisible by n_head={n_head}")
        self.n_embd, self.n_head = n_embd, n_head
        self.head_size = n_embd // n_head
        self.softmax, self.causal = softmax, causal
        self.c_attn = Dense(n_embd, 3 * n_embd, dtype)
        self.c_proj = Dense(n_embd, n_embd, dtype)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        B, T, E = a.shape
        H, hs = self.n_head, self.head_size
        # (B,T,3E) -> (3,B,H,T,hs): q/k/v blocks, head j owns columns j*hs:(j+1)*hs.
        qkv = self.c_attn(a).view(B, T, 3, H, hs).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.softmax:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            if self.causal:
                s = s.tril()  # future positions -> 0 (no -inf, no normalisation)
            o = s @ v
        o = o.transpose(1, 2).reshape(B, T, E)
        return self.c_proj(o)


class MLP(nn.Module):
    def __init__(self, n_embd: int, dtype=torch.float32):
        super().__init__()
        self.c_fc = Dense(n_embd, 4 * n_embd, dtype)
        self.c_proj = Dense(4 * n_embd, n_embd, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, softmax: bool = True,
                 ffn: bool = True, causal: bool = True, dtype=torch.float32):
        super().__init__()
        self.ln_1 = LayerNorm(n_embd, dtype)
        self.attn = Attention(n_embd, n_head, softmax, causal, dtype)
        self.ffn = ffn
        if ffn:
            self.ln_2 = LayerNorm(n_embd, dtype)
            self.mlp = MLP(n_embd, dtype)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.ln_1(h))
        if self.ffn:
            h = h + self.mlp(self.ln_2(h))
        return h


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------
class TorchModel(nn.Module):
    """GPT-2 (pre-LN) over (x, y, [r,0,..]) token triplets, SPEC §2.

    ``forward(xs, ys, rs)`` returns ``pred (B,N,d)`` or, with ``reward_head=True``,
    ``(pred, rhat)`` with ``rhat (B,N)`` read at the y-tokens.
    """

    def __init__(self, n_dims: int, n_points: int, n_embd: int, n_layer: int,
                 n_head: int, softmax: bool = True, ffn: bool = True,
                 causal: bool = True, reward_head: bool = False,
                 dtype=torch.float32):
        super().__init__()
        self.n_dims, self.n_points = n_dims, n_points
        self.n_embd, self.n_layer, self.n_head = n_embd, n_layer, n_head
        self.softmax, self.ffn, self.causal = softmax, ffn, causal
        self.reward_head = reward_head
        self.dtype = dtype
        self.read_in = Dense(n_dims, n_embd, dtype)
        self.wpe = nn.Parameter(torch.empty(3 * n_points, n_embd, dtype=dtype))
        self.h = nn.ModuleList(
            Block(n_embd, n_head, softmax, ffn, causal, dtype) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd, dtype)
        self.read_out = Dense(n_embd, n_dims, dtype)
        if reward_head:
            self.read_reward = Dense(n_embd, 1, dtype)
        gpt2_init_(self, 0)

    # -- tokens ------------------------------------------------------------
    def embed(self, xs: torch.Tensor, ys: torch.Tensor, rs: torch.Tensor) -> torch.Tensor:
        xs = torch.as_tensor(xs, dtype=self.dtype)
        ys = torch.as_tensor(ys, dtype=self.dtype)
        rs = torch.as_tensor(rs, dtype=self.dtype)
        if rs.dim() == 3:
            rs = rs.squeeze(-1)
        B, N, d = xs.shape
        if d != self.n_dims:
            raise ValueError(f"n_dims mismatch: got {d}, model has {self.n_dims}")
        if N > self.n_points:
            raise ValueError(f"N={N} exceeds n_points={self.n_points}")
        rtok = F.pad(rs.unsqueeze(-1), (0, d - 1))               # (B,N,d) = [r,0,...,0]
        z = torch.stack((xs, ys, rtok), dim=2).reshape(B, 3 * N, d)
        return self.read_in(z) + self.wpe[: 3 * N]

    def forward(self, xs, ys, rs):
        h = self.embed(xs, ys, rs)
        for block in self.h:
            h = block(h)
        pred = self.read_out(self.ln_f(h[:, 0::3]))              # x-tokens 3n
        if self.reward_head:
            rhat = self.read_reward(self.ln_f(h[:, 1::3])).squeeze(-1)  # y-tokens 3n+1
            return pred, rhat
        return pred

    # -- numpy interop -----------------------------------------------------
    def load_numpy_state_dict(self, sd: dict) -> None:
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(sd))
        extra = sorted(set(sd) - set(params))
        if missing or extra:
            raise KeyError(f"state dict mismatch: missing={missing} unexpected={extra}")
        with torch.no_grad():
            for name, p in params.items():
                a = np.asarray(sd[name])
                if tuple(a.shape) != tuple(p.shape):
                    raise ValueError(
                        f"{name}: shape {tuple(a.shape)} != expected {tuple(p.shape)}")
                p.copy_(torch.from_numpy(np.ascontiguousarray(a)).to(p.dtype))

    def numpy_state_dict(self) -> dict:
        return {n: p.detach().cpu().numpy().copy() for n, p in self.named_parameters()}

    def numpy_grads(self) -> dict:
        out = {}
        for n, p in self.named_parameters():
            g = p.grad
            out[n] = (np.zeros(tuple(p.shape), dtype=_np_dtype(p.dtype)) if g is None
                      else g.detach().cpu().numpy().copy())
        return out


def _np_dtype(dtype: torch.dtype):
    return torch.empty((), dtype=dtype).numpy().dtype


# ---------------------------------------------------------------------------
# losses (SPEC §3)
# ---------------------------------------------------------------------------
def reward_scores(pred: torch.Tensor, ys: torch.Tensor, reward: str = "cosine") -> torch.Tensor:
    """``S[b,n,m] = rho(pred[b,n], ys[b,m])`` for pred (B,P,d), ys (B,M,d) -> (B,P,M)."""
    if reward == "cosine":
        pn = torch.linalg.vector_norm(pred, dim=-1).clamp_min(COS_EPS)
        yn = torch.linalg.vector_norm(ys, dim=-1).clamp_min(COS_EPS)
        return (pred @ ys.transpose(-2, -1)) / (pn.unsqueeze(-1) * yn.unsqueeze(-2))
    if reward == "neg_sq":
        diff = pred.unsqueeze(-2) - ys.unsqueeze(-3)             # (B,P,M,d)
        return -(diff * diff).sum(-1)
    raise ValueError(f"unknown reward {reward!r} (expected 'cosine' or 'neg_sq')")


def sequence_loss(pred: torch.Tensor, ys: torch.Tensor, rs: torch.Tensor,
                  objective: str = "pl", reward: str = "cosine") -> torch.Tensor:
    """SPEC §3 training objective: prediction n (n = 2..N-1) scored against the first n
    (response, reward) pairs sorted by reward (descending, stable); PL or BT loss;
    mean over n, then over the batch. Returns a scalar tensor."""
    if objective not in ("pl", "bt"):
        raise ValueError(f"unknown objective {objective!r} (expected 'pl' or 'bt')")
    if rs.dim() == 3:
        rs = rs.squeeze(-1)
    B, N, _ = ys.shape
    if N < 3:
        return pred.sum() * 0.0
    # A stable descending sort of all N rewards, restricted to indices < n, is exactly
    # the sorted order of prefix n.
    perm = torch.sort(rs, dim=-1, descending=True, stable=True).indices     # (B,N)
    ys_sorted = torch.gather(ys, 1, perm.unsqueeze(-1).expand_as(ys))       # (B,N,d)
    S = reward_scores(pred[:, 2:], ys_sorted, reward)                       # (B,P,N)
    n = torch.arange(2, N, device=pred.device)                              # (P,)
    valid = perm.unsqueeze(1) < n.view(1, -1, 1)                            # (B,P,N)
    nf = n.to(pred.dtype)
    if objective == "pl":
        Sm = torch.where(valid, S, torch.full_like(S, _NEG))
        # suffix log-sum-exp over valid entries at positions >= i
        lse = torch.logcumsumexp(Sm.flip(-1), dim=-1).flip(-1)
        per_prefix = torch.where(valid, lse - S, torch.zeros_like(S)).sum(-1)  # (B,P)
    else:
        # ordered pairs (i before j in sorted order), both in the prefix
        upper = torch.ones(N, N, dtype=torch.bool, device=pred.device).triu(1)
        pair = valid.unsqueeze(-1) & valid.unsqueeze(-2) & upper            # (B,P,N,N)
        nll = -F.logsigmoid(S.unsqueeze(-1) - S.unsqueeze(-2))
        per_prefix = torch.where(pair, nll, torch.zeros_like(nll)).sum((-2, -1))
        per_prefix = per_prefix / (nf * (nf - 1) / 2)
    return per_prefix.mean()


def reward_head_loss(rhat: torch.Tensor, rs: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    if rs.dim() == 3:
        rs = rs.squeeze(-1)
    return weight * torch.mean((rhat - rs) ** 2)


# ---------------------------------------------------------------------------
# init / training
# ---------------------------------------------------------------------------
def gpt2_init_(model: TorchModel, seed: int) -> TorchModel:
    """GPT-2 initialisation (SPEC §2), in place, from ``torch.Generator(seed)``."""
    g = torch.Generator().manual_seed(int(seed))
    std = 0.02
    proj_std = 0.02 / math.sqrt(2 * max(model.n_layer, 1))

    def normal_(p, s):
        p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).mul_(s).to(p.dtype))

    def uniform_(p, bound):
        u = torch.rand(p.shape, generator=g, dtype=torch.float64)
        p.copy_(((2.0 * u - 1.0) * bound).to(p.dtype))

    with torch.no_grad():
        for name in ("read_in", "read_out", "read_reward"):
            lin = getattr(model, name, None)
            if lin is not None:
                bound = 1.0 / math.sqrt(lin.weight.shape[0])
                uniform_(lin.weight, bound)
                uniform_(lin.bias, bound)
        normal_(model.wpe, std)
        for blk in model.h:
            for ln in (blk.ln_1, getattr(blk, "ln_2", None)):
                if ln is not None:
                    ln.weight.fill_(1.0)
                    ln.bias.zero_()
            dense = [(blk.attn.c_attn, std), (blk.attn.c_proj, proj_std)]
            if blk.ffn:
                dense += [(blk.mlp.c_fc, std), (blk.mlp.c_proj, proj_std)]
            for lin, s in dense:
                normal_(lin.weight, s)
                lin.bias.zero_()
        model.ln_f.weight.fill_(1.0)
        model.ln_f.bias.zero_()
    return model


def _total_loss(model: TorchModel, xs, ys, rs, objective: str, reward: str,
                reward_weight: float):
    out = model(xs, ys, rs)
    ys_t = torch.as_tensor(ys, dtype=model.dtype)
    rs_t = torch.as_tensor(rs, dtype=model.dtype)
    if model.reward_head:
        pred, rhat = out
        loss = sequence_loss(pred, ys_t, rs_t, objective, reward)
        loss = loss + reward_head_loss(rhat, rs_t, reward_weight)
    else:
        pred = out
        loss = sequence_loss(pred, ys_t, rs_t, objective, reward)
    return pred, loss


def train_step(model: TorchModel, opt: torch.optim.Optimizer, xs, ys, rs,
               objective: str = "pl", reward: str = "cosine",
               reward_weight: float = 1.0) -> float:
    """One step: zero_grad, forward, loss (+ reward-head MSE if present), backward, step."""
    opt.zero_grad(set_to_none=True)
    _, loss = _total_loss(model, xs, ys, rs, objective, reward, reward_weight)
    loss.backward()
    opt.step()
    return float(loss.detach())


def numpy_forward_and_grads(sd: dict, cfg_kwargs: dict, xs, ys, rs, objective: str,
                            reward: str, reward_weight: float = 1.0,
                            dtype=torch.float64):
    """Build a model in ``dtype``, load ``sd``, run forward + loss + backward.

    Returns ``(pred ndarray (B,N,d), loss float, grads {name: ndarray})``. Keys of
    ``cfg_kwargs`` that are not TorchModel constructor arguments are ignored."""
    accepted = set(inspect.signature(TorchModel.__init__).parameters) - {"self", "dtype"}
    kwargs = {k: v for k, v in dict(cfg_kwargs).items() if k in accepted}
    model = TorchModel(**kwargs, dtype=dtype)
    model.load_numpy_state_dict(sd)
    xs_t = torch.as_tensor(np.asarray(xs), dtype=dtype)
    ys_t = torch.as_tensor(np.asarray(ys), dtype=dtype)
    rs_t = torch.as_tensor(np.asarray(rs), dtype=dtype)
    model.zero_grad(set_to_none=True)
    pred, loss = _total_loss(model, xs_t, ys_t, rs_t, objective, reward, reward_weight)
    loss.backward()
    return pred.detach().cpu().numpy(), float(loss.detach()), model.numpy_grads()
