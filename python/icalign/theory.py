"""The theory, executed: transformers whose forward pass performs gradient descent
on the Plackett-Luce and Bradley-Terry losses over the triplets in their context.

Gradient descent targets (float64 NumPy)
----------------------------------------
Every example of a sequence shares one query x, so gradient descent on a linear
policy W (prediction y_hat = W x) is gradient descent on the prediction, with the
step scaled by |x|^2.  With the reward r(y_hat, y) = -|y_hat - y|^2 and the n
context examples sorted by their shown rewards (descending, tau), one step of size
``lr`` on the prediction is

  PL:  y_hat += 2 lr sum_{i<n} ( y_tau(i) - ybar_i(y_hat) ),
       ybar_i(y_hat) = sum_{j>=i} softmax_j(2<y_hat, y_tau(j)> - |y_tau(j)|^2) y_tau(j)

  BT:  y_hat += (2 lr / P) sum_{i<j} sigmoid(s_j - s_i) ( y_tau(i) - y_tau(j) ),
       s_j = 2<y_hat, y_tau(j)> - |y_tau(j)|^2,  P = n (n - 1) / 2,

i.e. gradient descent on ``L_PL = sum_i [logsumexp_{j>=i} r_j - r_i]`` and on the
Bradley-Terry loss averaged over all ordered pairs ``L_BT = (1/P) sum_{i<j}
-log sigmoid(r_i - r_j)``: the package's ``pl`` and ``bt`` objectives with the
``neg_sq`` reward (:func:`pl_gd`, :func:`bt_gd`).  ``lr`` is the step on the
prediction; a step eta on W is ``lr = eta |x|^2``.

Constructions
-------------
:func:`construct_pl_gd` and :func:`construct_bt_gd` return ordinary
:class:`~icalign.Transformer` objects whose weights are set by hand, so that
``model.predict(xs, ys, rs)[:, -1]`` is ``pl_gd``/``bt_gd`` applied to the first
``n_points - 1`` examples with the last x as the query.  Both use LayerNorm off
(``layernorm=False``: each LayerNorm is its affine map) and the ordinary GELU FFN.
See ``docs/theory.md`` for the mathematics; in short:

* residual stream: named registers (the raw token z, the response gathered at the
  reward token, its squared norm, a one-hot of the example index, token-type flags,
  the prediction, an accumulator, removal flags, ...), written by ``wpe``,
  ``read_in`` and the blocks;
* block 0 copies y_l into the reward token of example l (a positional head) and its
  FFN computes |y_l|^2 from GELU(+e u) + GELU(-e u) = c e^2 u^2 + O(e^4 u^4);
* PL (causal): one block per position in the ranking.  A *ranking head* (softmax
  over the remaining reward tokens with inverse temperature ``beta``: a near-hard
  maximum) returns the best remaining example's one-hot and response, and a
  *normaliser head* (softmax over the remaining examples with scores
  2<y_hat, y_j> - |y_j|^2) returns ybar_i; removed examples are masked by an
  additive logit ``-mask``.  n - 1 blocks per step; the last block's FFN adds the
  accumulator to the prediction (GELU(u) - GELU(-u) = u exactly) and clears the
  removal flags;
* BT (non-causal): every context reward token a, for each offset m = 1..n-1,
  attends to the pair {a, a+m mod n}: a hard head returns the better response of
  the pair and a soft head the pair's sigmoid-weighted mean; the query sums the
  pair terms over the context and broadcasts its new prediction back.
  ceil((n-1)/2) + 2 blocks per step (four heads per block).

Approximations, each a named argument:
``delta`` (assumed minimum gap between the shown rewards), ``beta`` (ranking
inverse temperature; the ranking head leaks weight <= (n-1) exp(-beta delta)),
``reward_bound`` (assumed |r| bound, sets the masking of non-reward tokens),
``mask`` (logit penalty of masked examples; leak <= n exp(-(mask - score range))),
``score_bound`` (assumed bound on |2<y_hat, y> - |y|^2|, enters ``mask``) and
``square_scale`` (the FFN's input scale e for |y|^2; relative error ~ 0.17 e^2 y^2
per coordinate, plus float32 cancellation ~ 1e-7 / (e |y|)).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .stats import pairwise_dot

__all__ = ["pl_gd", "bt_gd", "pl_grad", "bt_grad", "construct_pl_gd", "construct_bt_gd",
           "pl_gd_parameters", "bt_gd_parameters", "random_tasks", "relative_error",
           "Construction"]

_GELU_C = math.sqrt(2.0 / math.pi)


# ------------------------------------------------------------------------------------
# gradient descent on the prediction (float64 reference iterations)
# ------------------------------------------------------------------------------------

def _scores(yhat, Y):
    """s_j = r(yhat, y_j) + |yhat|^2 = 2<yhat, y_j> - |y_j|^2 (softmax-equivalent)."""
    return 2.0 * pairwise_dot(Y, yhat) - (Y * Y).sum(axis=1)


def _softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


def pl_grad(yhat, ys, rs):
    """Gradient of the Plackett-Luce loss L_PL(yhat) over examples (ys (n, d), rs (n,)),
    reward r(yhat, y) = -|yhat - y|^2, ranking by ``rs`` descending."""
    Y = np.asarray(ys, dtype=np.float64)[np.argsort(-np.asarray(rs, dtype=np.float64),
                                                     kind="stable")]
    yhat = np.asarray(yhat, dtype=np.float64)
    s = _scores(yhat, Y)
    g = np.zeros_like(yhat)
    for i in range(Y.shape[0] - 1):
        g -= 2.0 * (Y[i] - pairwise_dot(_softmax(s[i:])[:, None], Y[i:], axis=0))
    return g


def bt_grad(yhat, ys, rs):
    """Gradient of the Bradley-Terry loss averaged over all ordered pairs,
    (1/P) sum_{i<j} -log sigmoid(r_i - r_j), r(yhat, y) = -|yhat - y|^2."""
    Y = np.asarray(ys, dtype=np.float64)[np.argsort(-np.asarray(rs, dtype=np.float64),
                                                     kind="stable")]
    yhat = np.asarray(yhat, dtype=np.float64)
    n = Y.shape[0]
    if n < 2:
        return np.zeros_like(yhat)
    s = _scores(yhat, Y)
    iu, ju = np.triu_indices(n, 1)
    w = 0.5 * (1.0 + np.tanh(0.5 * (s[ju] - s[iu])))  # sigmoid(s_j - s_i)
    return -2.0 / iu.size * (w[:, None] * (Y[iu] - Y[ju])).sum(axis=0)


def _gd(grad, xs, ys, rs, lr, steps, y0):
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    rs = np.asarray(rs, dtype=np.float64)
    single = xs.ndim == 2
    if single:
        xs, ys, rs = xs[None], ys[None], rs[None]
    B, N, d = xs.shape
    rs = rs.reshape(B, N)
    out = np.zeros((B, d)) if y0 is None else np.array(np.broadcast_to(
        np.asarray(y0, dtype=np.float64), (B, d)))
    for b in range(B):
        for _ in range(steps):
            out[b] = out[b] - lr * grad(out[b], ys[b, :N - 1], rs[b, :N - 1])
    return out[0] if single else out


def pl_gd(xs, ys, rs, lr, steps=1, y0=None):
    """``steps`` steps of gradient descent (step ``lr`` on the prediction) on the
    Plackett-Luce loss of the first N - 1 examples, from ``y0`` (default 0).

    xs, ys: (B, N, d) or (N, d); rs: (B, N) or (N,). The last example only supplies
    the query (its y and r are ignored). Returns (B, d) (or (d,)).
    """
    return _gd(pl_grad, xs, ys, rs, lr, steps, y0)


def bt_gd(xs, ys, rs, lr, steps=1, y0=None):
    """As :func:`pl_gd` for the Bradley-Terry loss averaged over all ordered pairs."""
    return _gd(bt_grad, xs, ys, rs, lr, steps, y0)


# ------------------------------------------------------------------------------------
# tasks and error
# ------------------------------------------------------------------------------------

def random_tasks(n_tasks, n_dims=5, n_points=20, delta=0.02, noise=1.0, seed=0):
    """Random tasks for the constructions: x ~ N(0, I), y* = W* x with W* ~ N(0, 1/d),
    y_i = y* + noise N(0, I), shown rewards r_i = -|y_i - y*|^2, redrawn until the
    context rewards are at least ``delta`` apart. Returns xs, ys (B, N, d), rs (B, N).
    """
    rng = np.random.default_rng(seed)
    xs = np.empty((n_tasks, n_points, n_dims))
    ys = np.empty_like(xs)
    rs = np.empty((n_tasks, n_points))
    for b in range(n_tasks):
        x = rng.standard_normal(n_dims)
        ystar = pairwise_dot(rng.standard_normal((n_dims, n_dims)) / math.sqrt(n_dims), x)
        Y = ystar + noise * rng.standard_normal((n_points, n_dims))
        r = -((Y - ystar) ** 2).sum(axis=1)
        while True:
            order = np.argsort(r[:-1])
            close = np.nonzero(np.diff(r[:-1][order]) < delta)[0]
            if close.size == 0:
                break
            for i in order[close + 1]:
                Y[i] = ystar + noise * rng.standard_normal(n_dims)
                r[i] = -((Y[i] - ystar) ** 2).sum()
        xs[b] = x
        ys[b] = Y
        rs[b] = r
    return xs, ys, rs


def relative_error(pred, target):
    """|pred - target| / |target| per row."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    return np.linalg.norm(pred - target, axis=-1) / np.linalg.norm(target, axis=-1)


# ------------------------------------------------------------------------------------
# the hand-set weights
# ------------------------------------------------------------------------------------

class _Layout:
    """Named column ranges of the residual stream."""

    def __init__(self):
        self.size = 0
        self.regs = {}

    def add(self, name, width):
        self.regs[name] = np.arange(self.size, self.size + width)
        self.size += width
        return self.regs[name]

    def __getitem__(self, name):
        return self.regs[name]


class _Weights:
    """Parameter arrays of a LayerNorm-free model, filled head by head.

    A head is a list of bilinear score terms and value paths; each takes one of
    the head's dimensions.  ``q``/``k``/``v`` are {column: coefficient} maps of the
    residual (None for a constant through the bias), ``out`` maps the head
    dimension to residual columns.
    """

    def __init__(self, n_dims, n_points, n_embd, n_layer, n_head):
        d, E = n_dims, n_embd
        self.E, self.hs = E, E // n_head
        self.p = {"read_in.weight": np.zeros((d, E)), "read_in.bias": np.zeros(E),
                  "wpe": np.zeros((3 * n_points, E))}
        for l in range(n_layer):
            h = f"h.{l}."
            self.p.update({
                h + "ln_1.weight": np.ones(E), h + "ln_1.bias": np.zeros(E),
                h + "attn.c_attn.weight": np.zeros((E, 3 * E)),
                h + "attn.c_attn.bias": np.zeros(3 * E),
                h + "attn.c_proj.weight": np.zeros((E, E)), h + "attn.c_proj.bias": np.zeros(E),
                h + "ln_2.weight": np.ones(E), h + "ln_2.bias": np.zeros(E),
                h + "mlp.c_fc.weight": np.zeros((E, 4 * E)), h + "mlp.c_fc.bias": np.zeros(4 * E),
                h + "mlp.c_proj.weight": np.zeros((4 * E, E)), h + "mlp.c_proj.bias": np.zeros(E),
            })
        self.p.update({"ln_f.weight": np.ones(E), "ln_f.bias": np.zeros(E),
                       "read_out.weight": np.zeros((E, d)), "read_out.bias": np.zeros(d)})
        self.used = {}   # (layer, head, "score" | "value") -> head dimensions used
        self.hidden = {}  # layer -> FFN units used

    def _dim(self, l, j, kind):
        k = self.used.get((l, j, kind), 0)
        if k >= self.hs:
            raise ValueError(f"head {j} of block {l} needs more than {self.hs} "
                             f"{kind} dimensions")
        self.used[(l, j, kind)] = k + 1
        return j * self.hs + k

    def _set(self, l, col, which, coefs, scale=1.0):
        W = self.p[f"h.{l}.attn.c_attn.weight"]
        b = self.p[f"h.{l}.attn.c_attn.bias"]
        off = which * self.E + col
        for src, c in coefs.items():
            if src is None:
                b[off] += scale * c
            else:
                W[src, off] += scale * c

    def score(self, l, j, q, k):
        """Add q(h_query) * k(h_key) to the logits of head j of block l."""
        col = self._dim(l, j, "score")
        self._set(l, col, 0, q, math.sqrt(self.hs))  # undo the 1/sqrt(hs) scaling
        self._set(l, col, 1, k)

    def value(self, l, j, v, out):
        """Add (attention-weighted v(h_key)) * out to the residual."""
        col = self._dim(l, j, "value")
        self._set(l, col, 2, v)
        Wp = self.p[f"h.{l}.attn.c_proj.weight"]
        for dst, c in out.items():
            Wp[col, dst] += c

    def ffn_unit(self, l, inp, bias, out):
        """One hidden unit: residual[out] += GELU(inp . h + bias) * out."""
        u = self.hidden.get(l, 0)
        if u >= 4 * self.E:
            raise ValueError(f"FFN of block {l} needs more than {4 * self.E} units")
        self.hidden[l] = u + 1
        for src, c in inp.items():
            self.p[f"h.{l}.mlp.c_fc.weight"][src, u] += c
        self.p[f"h.{l}.mlp.c_fc.bias"][u] += bias
        for dst, c in out.items():
            self.p[f"h.{l}.mlp.c_proj.weight"][u, dst] += c

    def ffn_linear(self, l, src, dst, coef=1.0):
        """residual[dst] += coef * residual[src], exactly: GELU(u) - GELU(-u) = u."""
        self.ffn_unit(l, {src: 1.0}, 0.0, {dst: coef})
        self.ffn_unit(l, {src: -1.0}, 0.0, {dst: -coef})

    def ffn_square(self, l, src, dst, eps):
        """residual[dst] += residual[src]^2 (1 + O(eps^2 u^2)):
        GELU(e u) + GELU(-e u) = u tanh(c (e u + 0.044715 e^3 u^3)) ~ c e^2 u^2."""
        coef = 1.0 / (_GELU_C * eps * eps)
        self.ffn_unit(l, {src: eps}, 0.0, {dst: coef})
        self.ffn_unit(l, {src: -eps}, 0.0, {dst: coef})


@dataclass
class Construction:
    """A hand-built model: its configuration (as ``ModelConfig`` keyword arguments),
    float64 parameters (names and shapes as the package's Transformer) and the
    constants of its approximations."""

    kind: str
    config: dict
    params: dict
    constants: dict = field(default_factory=dict)
    blocks_per_step: int = 0
    arguments: dict = field(default_factory=dict)

    def transformer(self):
        """The C model with these weights (float32)."""
        from .config import ModelConfig
        from .model import Transformer
        model = Transformer(ModelConfig(**self.config))
        model.load_state_dict({k: v.astype(np.float32) for k, v in self.params.items()})
        return model


def _defaults(n, delta, beta, reward_bound, mask, score_bound, square_scale):
    beta = 40.0 / delta if beta is None else float(beta)
    if mask is None:
        mask = 4.0 * score_bound + 40.0
    return dict(delta=float(delta), beta=beta, reward_bound=float(reward_bound),
                mask=float(mask), score_bound=float(score_bound),
                square_scale=float(square_scale),
                # non-reward tokens: logit beta * z0 with |z0| <= reward_bound (assumed)
                rank_mask=2.0 * beta * float(reward_bound) + 40.0)


def _start(n_dims, n_points, delta, beta, reward_bound, mask, score_bound, square_scale):
    """Sizes, constants and the registers both constructions share."""
    d, n = int(n_dims), int(n_points) - 1
    if n < 1:
        raise ValueError("n_points must be >= 2 (at least one context example)")
    c = _defaults(n, delta, beta, reward_bound, mask, score_bound, square_scale)
    return d, n, c, _common_layout(d, n)


def _common_layout(d, n):
    lay = _Layout()
    for name, width in (("Z", d), ("Y", d), ("SQ", 1), ("P", n), ("IY", 1), ("IR", 1),
                        ("IQ", 1), ("ONE", 1), ("YH", d), ("ACC", d)):
        lay.add(name, width)
    return lay


def _embed(w, lay, d, n, y0_weight):
    """read_in copies z into Z and W0 z into YH; wpe writes the index one-hot and flags."""
    p = w.p
    p["read_in.weight"][np.arange(d), lay["Z"]] = 1.0
    if y0_weight is not None:
        W0 = np.asarray(y0_weight, dtype=np.float64)
        if W0.shape != (d, d):
            raise ValueError(f"y0_weight must have shape ({d}, {d}), got {W0.shape}")
        p["read_in.weight"][:, lay["YH"]] += W0.T
    wpe = p["wpe"]
    wpe[:, lay["ONE"][0]] = 1.0
    for l in range(n):
        wpe[3 * l:3 * l + 3, lay["P"][l]] = 1.0
        wpe[3 * l + 1, lay["IY"][0]] = 1.0
        wpe[3 * l + 2, lay["IR"][0]] = 1.0
    wpe[3 * n, lay["IQ"][0]] = 1.0
    p["read_out.weight"][lay["YH"], np.arange(d)] = 1.0


def _prep_block(w, lay, d, n, c, head=0):
    """Block 0: the reward token of example l copies y_l (from the y-token of l:
    logit ``mask`` for the same example plus ``mask`` for a y-token), and the FFN
    writes |y_l|^2 into SQ."""
    B = c["mask"]
    for i in range(n):
        w.score(0, head, {lay["P"][i]: B}, {lay["P"][i]: 1.0})
    w.score(0, head, {None: B}, {lay["IY"][0]: 1.0})
    for m in range(d):
        w.value(0, head, {lay["Z"][m]: 1.0}, {lay["Y"][m]: 1.0})
        w.ffn_square(0, lay["Y"][m], lay["SQ"][0], c["square_scale"])


def _end_step(w, l, lay, regs_to_clear):
    """FFN: YH += ACC and clear ACC and the given registers (exact linear maps)."""
    for a, b in zip(lay["ACC"], lay["YH"]):
        w.ffn_linear(l, a, b, 1.0)
    for name in ("ACC",) + tuple(regs_to_clear):
        for col in lay[name]:
            w.ffn_linear(l, col, col, -1.0)


def _normaliser_terms(w, l, j, lay, d, query_yhat, c):
    """Logit 2<yhat, y_j> - |y_j|^2 (yhat read at the query, y_j at the key)."""
    for m in range(d):
        w.score(l, j, {query_yhat[m]: 2.0}, {lay["Y"][m]: 1.0})
    w.score(l, j, {None: -1.0}, {lay["SQ"][0]: 1.0})


def pl_gd_parameters(n_dims, n_points, lr, steps=1, y0_weight=None, *, delta=0.02,
                     beta=None, reward_bound=50.0, mask=None, score_bound=60.0,
                     square_scale=3e-3, blocks_per_step=None):
    """The weights of :func:`construct_pl_gd` as a :class:`Construction` (float64).

    ``blocks_per_step`` (default n - 1, all ranking positions) builds a model with
    fewer ranking blocks: it runs gradient descent on the PL loss truncated to its
    first ``blocks_per_step`` ranking terms.
    """
    args = dict(locals())
    d, n, c, lay = _start(n_dims, n_points, delta, beta, reward_bound, mask, score_bound,
                          square_scale)
    lay.add("RM", n)
    per_step = _blocks(blocks_per_step, n - 1)
    L = 1 + steps * per_step
    hs = max(n + d + 3, -(-lay.size // 2))
    E = 2 * hs
    w = _Weights(d, n_points, E, max(L, 1), 2)
    _embed(w, lay, d, n, y0_weight)
    _prep_block(w, lay, d, n, c)
    B, Br, beta_ = c["mask"], c["rank_mask"], c["beta"]
    for k in range(steps):
        for t in range(per_step):
            l = 1 + k * per_step + t
            # ranking head (0): best remaining reward token -> its one-hot and response
            w.score(l, 0, {None: beta_}, {lay["Z"][0]: 1.0})
            w.score(l, 0, {None: Br}, {lay["IR"][0]: 1.0})
            for i in range(n):
                w.score(l, 0, {lay["RM"][i]: -Br}, {lay["P"][i]: 1.0})
            for i in range(n):
                w.value(l, 0, {lay["P"][i]: 1.0}, {lay["RM"][i]: 1.0})
            for m in range(d):
                w.value(l, 0, {lay["Y"][m]: 1.0}, {lay["ACC"][m]: 2.0 * lr})
            # normaliser head (1): softmax over the remaining examples
            _normaliser_terms(w, l, 1, lay, d, lay["YH"], c)
            w.score(l, 1, {None: B}, {lay["IR"][0]: 1.0})
            for i in range(n):
                w.score(l, 1, {lay["RM"][i]: -B}, {lay["P"][i]: 1.0})
            for m in range(d):
                w.value(l, 1, {lay["Y"][m]: 1.0}, {lay["ACC"][m]: -2.0 * lr})
            if t == per_step - 1:
                _end_step(w, l, lay, ("RM",))
    config = dict(n_dims=d, n_points=int(n_points), n_embd=E, n_layer=L, n_head=2,
                  softmax=True, ffn=True, causal=True, layernorm=False)
    return Construction("pl", config, w.p, c, per_step, args)


def _blocks(requested, full):
    if requested is None:
        return full
    if isinstance(requested, bool) or not 0 <= int(requested) <= full:
        raise ValueError(f"blocks_per_step must lie in [0, {full}], got {requested!r}")
    return int(requested)


def bt_gd_parameters(n_dims, n_points, lr, steps=1, y0_weight=None, *, delta=0.02,
                     beta=None, reward_bound=50.0, mask=None, score_bound=60.0,
                     square_scale=3e-3, blocks_per_step=None):
    """The weights of :func:`construct_bt_gd` as a :class:`Construction` (float64).

    ``blocks_per_step`` counts the pair blocks of a step (two offsets each; default
    ceil((n - 1) / 2), every pair); fewer leave out the pairs of the missing offsets.
    """
    args = dict(locals())
    d, n, c, lay = _start(n_dims, n_points, delta, beta, reward_bound, mask, score_bound,
                          square_scale)
    lay.add("YC", d)
    H = 4
    offsets = list(range(1, n))
    pair_blocks = _blocks(blocks_per_step, -(-len(offsets) // 2))
    per_step = pair_blocks + 2
    L = 1 + steps * per_step
    hs = max(n + d + 3, -(-lay.size // H))
    E = H * hs
    w = _Weights(d, n_points, E, max(L, 1), H)
    _embed(w, lay, d, n, y0_weight)
    _prep_block(w, lay, d, n, c)
    B, Br, beta_ = c["mask"], c["rank_mask"], c["beta"]
    P = n * (n - 1) / 2
    coef = lr / P if P else 0.0  # (2 lr / P) * (1/2: each pair is seen from both ends)

    def broadcast(l, j):
        """Every token copies the query's prediction into YC (non-causal)."""
        w.score(l, j, {None: B}, {lay["IQ"][0]: 1.0})
        for m in range(d):
            w.value(l, j, {lay["YH"][m]: 1.0}, {lay["YC"][m]: 1.0})

    broadcast(0, 1)
    for k in range(steps):
        base = 1 + k * per_step
        for bi in range(pair_blocks):
            l = base + bi
            for slot, m in enumerate(offsets[2 * bi:2 * bi + 2]):
                perm = {i: (i + m) % n for i in range(n)}
                hard, soft = 2 * slot, 2 * slot + 1
                # pair {a, a+m}: logit Br (hard) / B (soft) for each member, plus
                # the same for being a context reward token
                for i in range(n):
                    pair = {lay["P"][i]: 1.0, lay["P"][perm[i]]: 1.0}
                    w.score(l, hard, {lay["P"][i]: Br}, pair)
                    w.score(l, soft, {lay["P"][i]: B}, pair)
                w.score(l, hard, {None: Br}, {lay["IR"][0]: 1.0})
                w.score(l, hard, {None: beta_}, {lay["Z"][0]: 1.0})
                w.score(l, soft, {None: B}, {lay["IR"][0]: 1.0})
                _normaliser_terms(w, l, soft, lay, d, lay["YC"], c)
                for mm in range(d):
                    w.value(l, hard, {lay["Y"][mm]: 1.0}, {lay["ACC"][mm]: coef})
                    w.value(l, soft, {lay["Y"][mm]: 1.0}, {lay["ACC"][mm]: -coef})
        l = base + pair_blocks  # the query sums ACC over the context reward tokens
        w.score(l, 0, {None: B}, {lay["IR"][0]: 1.0})
        for mm in range(d):
            w.value(l, 0, {lay["ACC"][mm]: 1.0}, {lay["YH"][mm]: float(n)})
        for col in list(lay["ACC"]) + list(lay["YC"]):
            w.ffn_linear(l, col, col, -1.0)
        broadcast(l + 1, 0)  # the next step's prediction, at every token
    config = dict(n_dims=d, n_points=int(n_points), n_embd=E, n_layer=L, n_head=H,
                  softmax=True, ffn=True, causal=False, layernorm=False)
    return Construction("bt", config, w.p, c, per_step, args)


def construct_pl_gd(n_dims, n_points, lr, steps=1, **approximation):
    """A Transformer whose prediction at the last x-token is :func:`pl_gd` (``steps``
    steps, step ``lr``) over the first ``n_points - 1`` examples.

    The model reads sequences of exactly ``n_points`` examples (its position
    embedding marks which tokens are context). Keyword arguments (the
    approximations, see the module docstring): ``y0_weight`` (W0, start from W0 x),
    ``delta``, ``beta``, ``reward_bound``, ``mask``, ``score_bound``,
    ``square_scale``, ``blocks_per_step``.

    Returns
    -------
    Transformer
        ``1 + steps (n_points - 2)`` blocks of two heads, ``layernorm=False``.

    Examples
    --------
    >>> import numpy as np
    >>> from icalign import theory
    >>> model = theory.construct_pl_gd(5, 11, lr=0.1)
    >>> xs, ys, rs = theory.random_tasks(4, n_dims=5, n_points=11, seed=0)
    >>> err = theory.relative_error(model.predict(xs, ys, rs)[:, -1],
    ...                             theory.pl_gd(xs, ys, rs, lr=0.1))
    >>> bool(err.max() < 1e-3)
    True
    """
    return pl_gd_parameters(n_dims, n_points, lr, steps, **approximation).transformer()


def construct_bt_gd(n_dims, n_points, lr, steps=1, **approximation):
    """As :func:`construct_pl_gd` for :func:`bt_gd` (non-causal attention).

    Returns
    -------
    Transformer
        ``1 + steps (ceil((n_points - 2) / 2) + 2)`` blocks of four heads,
        ``causal=False``, ``layernorm=False``.
    """
    return bt_gd_parameters(n_dims, n_points, lr, steps, **approximation).transformer()


# ------------------------------------------------------------------------------------
# ablations
# ------------------------------------------------------------------------------------

ABLATIONS = ("linear_attention", "merged_heads", "no_ffn", "fewer_blocks")


def ablate(construction, which, blocks_per_step=None):
    """The construction with one component taken away.

    ``linear_attention``: scores used as weights without the softmax (same weights);
    ``merged_heads``: each block's heads become one head over the same columns
    (each head's logits keep their scale, so the merged logits are their sum);
    ``no_ffn``: blocks without FFN; ``fewer_blocks``: the construction rebuilt with
    ``blocks_per_step`` blocks per step (default: one less than it needs), which
    leaves out the last ranking positions (PL) or pair offsets (BT).
    """
    cfg = dict(construction.config)
    params = {k: v.copy() for k, v in construction.params.items()}
    if which == "linear_attention":
        cfg["softmax"] = False
    elif which == "merged_heads":
        H, E = cfg["n_head"], cfg["n_embd"]
        for l in range(cfg["n_layer"]):
            params[f"h.{l}.attn.c_attn.weight"][:, :E] *= math.sqrt(H)
            params[f"h.{l}.attn.c_attn.bias"][:E] *= math.sqrt(H)
        cfg["n_head"] = 1
    elif which == "no_ffn":
        cfg["ffn"] = False
        params = {k: v for k, v in params.items() if ".mlp." not in k and ".ln_2." not in k}
    elif which == "fewer_blocks":
        args = dict(construction.arguments)
        full = _pair_or_rank_blocks(construction)
        args["blocks_per_step"] = full - 1 if blocks_per_step is None else blocks_per_step
        build = pl_gd_parameters if construction.kind == "pl" else bt_gd_parameters
        return build(**args)
    else:
        raise ValueError(f"unknown ablation {which!r}; expected one of {ABLATIONS}")
    return Construction(construction.kind, cfg, params, dict(construction.constants),
                        construction.blocks_per_step, dict(construction.arguments))


def _pair_or_rank_blocks(construction):
    """Blocks per step the full construction of this size needs (not counting the
    two BT bookkeeping blocks)."""
    n = construction.config["n_points"] - 1
    return n - 1 if construction.kind == "pl" else -(-(n - 1) // 2)


# ------------------------------------------------------------------------------------
# measurements (C forward pass, float32)
# ------------------------------------------------------------------------------------

def _gd_of(kind):
    return {"pl": pl_gd, "bt": bt_gd}[kind]


def _build_of(kind):
    return {"pl": pl_gd_parameters, "bt": bt_gd_parameters}[kind]


def construction_errors(construction, xs, ys, rs, model=None):
    """Relative error of the construction's C prediction against the GD it builds,
    per task (inf where the prediction is not finite)."""
    a = construction.arguments
    y0 = None
    if a.get("y0_weight") is not None:
        y0 = pairwise_dot(np.asarray(xs, dtype=np.float64)[:, -1, None, :],
                          np.asarray(a["y0_weight"], dtype=np.float64))
    target = _gd_of(construction.kind)(xs, ys, rs, a["lr"], a["steps"], y0)
    model = construction.transformer() if model is None else model
    try:
        pred = model.predict(np.asarray(xs, np.float32), np.asarray(ys, np.float32),
                             np.asarray(rs, np.float32))[:, -1].astype(np.float64)
    except FloatingPointError:  # the C core refuses to return an overflowed prediction
        return np.full(target.shape[0], np.inf)
    with np.errstate(all="ignore"):
        err = relative_error(pred, target)
    return np.where(np.isfinite(err), err, np.inf)


def _summary(err):
    return {"median": float(np.median(err)), "max": float(np.max(err)),
            "n_tasks": int(err.size)}


def accuracy_table(n_tasks=256, n_dims=5, n_points=(5, 11, 20), steps=(1, 3),
                   kinds=("pl", "bt"), lr=0.1, delta=0.02, seed=0):
    """Median and worst relative error of each construction (default constants)
    against its GD on ``n_tasks`` random tasks per row (:func:`random_tasks`)."""
    rows = []
    for kind in kinds:
        for N in n_points:
            xs, ys, rs = random_tasks(n_tasks, n_dims, N, delta=delta, seed=seed + N)
            for k in steps:
                c = _build_of(kind)(n_dims, N, lr, k, delta=delta)
                rows.append({"kind": kind, "n_points": int(N), "steps": int(k),
                             "n_embd": c.config["n_embd"], "n_layer": c.config["n_layer"],
                             "n_head": c.config["n_head"],
                             **_summary(construction_errors(c, xs, ys, rs))})
    return rows


SWEEPS = {
    # constant -> values, from far too small to the default and beyond
    "beta_delta": (1.0, 2.0, 4.0, 8.0, 16.0, 40.0, 80.0),
    "mask": (5.0, 10.0, 20.0, 40.0, 80.0, 280.0),
    "inverse_square_scale": (3.0, 10.0, 30.0, 100.0, 333.0, 1000.0),
}


def constant_sweep(kind="pl", n_dims=5, n_points=11, steps=1, n_tasks=64, lr=0.1,
                   delta=0.02, seed=0, sweeps=SWEEPS):
    """Error against GD as each approximation constant grows, the others at their
    defaults: ``beta_delta`` (ranking inverse temperature times the reward gap),
    ``mask`` (masking logit) and ``inverse_square_scale`` (1 / the FFN's input
    scale for squares). Returns {constant: [{"value", "median", "max"}, ...]}."""
    xs, ys, rs = random_tasks(n_tasks, n_dims, n_points, delta=delta, seed=seed)
    out = {}
    for name, values in sweeps.items():
        rows = []
        for v in values:
            kw = {"beta_delta": {"beta": v / delta}, "mask": {"mask": v},
                  "inverse_square_scale": {"square_scale": 1.0 / v}}[name]
            c = _build_of(kind)(n_dims, n_points, lr, steps, delta=delta, **kw)
            rows.append({"value": float(v), **_summary(construction_errors(c, xs, ys, rs))})
        out[name] = rows
    return out


def ablation_errors(kind="pl", n_dims=5, n_points=11, steps=1, n_tasks=64, lr=0.1,
                    delta=0.02, seed=0):
    """Errors of the full construction, of each ablation and of the construction
    with 0..all ranking (PL) / pair (BT) blocks per step."""
    xs, ys, rs = random_tasks(n_tasks, n_dims, n_points, delta=delta, seed=seed)
    c = _build_of(kind)(n_dims, n_points, lr, steps, delta=delta)
    out = {"kind": kind, "n_points": int(n_points), "steps": int(steps),
           "full": _summary(construction_errors(c, xs, ys, rs))}
    for which in ABLATIONS:
        out[which] = _summary(construction_errors(ablate(c, which), xs, ys, rs))
    need = _pair_or_rank_blocks(c)
    out["blocks"] = [{"blocks_per_step": b,
                      **_summary(construction_errors(ablate(c, "fewer_blocks", b),
                                                     xs, ys, rs))}
                     for b in range(need + 1)]
    out["blocks_needed"] = need
    return out


def depth_errors(blocks=(2, 4, 6, 8), n_points=range(3, 21), kind="pl", n_dims=5,
                 steps=1, n_tasks=64, lr=0.1, delta=0.02, seed=0):
    """Error against full GD of constructions limited to ``b`` ranking (PL) / pair
    (BT) blocks per step, as the number of examples grows: the construction's
    analogue of the depth panel. Returns {"n_points": [...], "curves": {b: [...]}}."""
    n_points = [int(N) for N in n_points]
    curves = {}
    for b in blocks:
        med = []
        for N in n_points:
            xs, ys, rs = random_tasks(n_tasks, n_dims, N, delta=delta, seed=seed + N)
            full = _build_of(kind)(n_dims, N, lr, steps, delta=delta)
            c = ablate(full, "fewer_blocks", min(int(b), _pair_or_rank_blocks(full)))
            med.append(float(np.median(construction_errors(c, xs, ys, rs))))
        curves[int(b)] = med
    return {"kind": kind, "n_points": n_points, "curves": curves}


# ------------------------------------------------------------------------------------
# probe of attention maps
# ------------------------------------------------------------------------------------

def _spearman(a, b):
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def _pearson(a, b):
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def probe_attention(maps, ys, rs, yhat):
    """How the query's attention over the context relates to the ranking.

    maps: (B, L, H, T, T) attention probabilities; ys (B, N, d), rs (B, N); yhat
    (B, d) the prediction used in the PL normaliser weights
    softmax_j(2<yhat, y_j> - |y_j|^2). The query is the last x-token (row 3(N-1));
    its attention mass on example j is the sum over j's three tokens. Per layer and
    head (means over tasks): ``spearman_reward`` (mass vs shown reward),
    ``pearson_normaliser`` (mass vs the normaliser weights at ``yhat``),
    ``pearson_normaliser_y0`` (the same at y_hat = 0, the first GD step's),
    ``top_mass`` (share of the context mass on the best example; 1/n for uniform
    attention).
    Returns a dict of (L, H) arrays plus ``uniform_top_mass``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    rs = np.asarray(rs, dtype=np.float64)
    B, L, H, T, _ = maps.shape
    N = T // 3
    n = N - 1
    row = maps[:, :, :, 3 * n, :3 * n].reshape(B, L, H, n, 3).sum(axis=-1)  # (B, L, H, n)
    mass = row / np.maximum(row.sum(axis=-1, keepdims=True), 1e-30)
    Y = ys[:, :n]
    norm_w = np.array([_softmax(_scores(np.asarray(yhat[b], dtype=np.float64), Y[b]))
                       for b in range(B)])
    norm_0 = np.array([_softmax(_scores(np.zeros(Y.shape[2]), Y[b])) for b in range(B)])
    best = np.argmax(rs[:, :n], axis=1)
    sp = np.zeros((L, H))
    pn = np.zeros((L, H))
    p0 = np.zeros((L, H))
    top = np.zeros((L, H))
    for l in range(L):
        for h in range(H):
            sp[l, h] = np.mean([_spearman(mass[b, l, h], rs[b, :n]) for b in range(B)])
            pn[l, h] = np.mean([_pearson(mass[b, l, h], norm_w[b]) for b in range(B)])
            p0[l, h] = np.mean([_pearson(mass[b, l, h], norm_0[b]) for b in range(B)])
            top[l, h] = np.mean(mass[np.arange(B), l, h, best])
    return {"spearman_reward": sp, "pearson_normaliser": pn, "pearson_normaliser_y0": p0,
            "top_mass": top,
            "uniform_top_mass": 1.0 / n}


def _probe_summary(probe):
    sp, top, pn, p0 = (np.asarray(probe[k]) for k in (
        "spearman_reward", "top_mass", "pearson_normaliser", "pearson_normaliser_y0"))
    i = np.unravel_index(np.argmax(top), top.shape)
    j = np.unravel_index(np.argmax(sp), sp.shape)
    k = np.unravel_index(np.argmax(pn), pn.shape)
    k0 = np.unravel_index(np.argmax(p0), p0.shape)
    return {"max_top_mass": float(top[i]), "max_top_mass_at": [int(i[0]), int(i[1])],
            "max_spearman": float(sp[j]), "max_spearman_at": [int(j[0]), int(j[1])],
            "max_pearson_normaliser": float(pn[k]),
            "max_pearson_normaliser_at": [int(k[0]), int(k[1])],
            "max_pearson_normaliser_y0": float(p0[k0]),
            "max_pearson_normaliser_y0_at": [int(k0[0]), int(k0[1])],
            "uniform_top_mass": float(probe["uniform_top_mass"])}


def probe_model(model, xs, ys, rs):
    """:func:`probe_attention` of a model's C attention maps, with the model's own
    prediction at the query as the normaliser's y_hat."""
    xs, ys, rs = (np.asarray(a, dtype=np.float32) for a in (xs, ys, rs))
    maps = model.attention_maps(xs, ys, rs)
    yhat = model.predict(xs, ys, rs)[:, -1]
    probe = probe_attention(maps, ys, rs, yhat)
    return {**{k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
               for k, v in probe.items()}, "summary": _probe_summary(probe)}


def probe_trained_model(path, n_tasks=256, seed=12345):
    """Probe a trained checkpoint on its own task distribution, next to the PL
    construction (same size of context) on the construction's tasks."""
    from .model import Transformer
    from .task import AlignmentTask
    from .training import load_checkpoint
    ck = load_checkpoint(path)
    cfg = ck["config"]
    model = Transformer(cfg)
    model.load_state_dict(ck["state_dict"])
    batch = AlignmentTask(cfg.n_dims, cfg.n_points).sample(n_tasks, seed=seed)
    trained = probe_model(model, batch.xs, batch.ys, batch.rs)
    c = pl_gd_parameters(cfg.n_dims, cfg.n_points, 0.1, 1)
    xs, ys, rs = random_tasks(min(n_tasks, 64), cfg.n_dims, cfg.n_points, seed=seed)
    construction = probe_model(c.transformer(), xs, ys, rs)
    return {"checkpoint": os.path.basename(os.fspath(path)), "config": cfg.to_dict(),
            "n_tasks": int(n_tasks), "trained": trained, "construction": construction}


def measure(n_tasks=256, n_points=(5, 11, 20), sweep_tasks=64, depth_points=range(3, 21),
            model_path=None):
    """Every measurement of ``docs/theory.md`` in one dict: ``accuracy``
    (:func:`accuracy_table`), ``sweeps`` ({loss: :func:`constant_sweep`}),
    ``ablations`` ([:func:`ablation_errors` for PL, BT]), ``depth``
    (:func:`depth_errors`) and, with ``model_path``, ``probe``
    (:func:`probe_trained_model`). Smaller arguments give a quick version.

    Returns
    -------
    dict
    """
    out = {"accuracy": accuracy_table(n_tasks=n_tasks, n_points=n_points),
           "sweeps": {kind: constant_sweep(kind, n_tasks=sweep_tasks) for kind in ("pl", "bt")},
           "ablations": [ablation_errors(kind, n_tasks=sweep_tasks) for kind in ("pl", "bt")],
           "depth": depth_errors(n_points=depth_points, n_tasks=sweep_tasks)}
    if model_path:
        out["probe"] = probe_trained_model(model_path)
    return out


# ------------------------------------------------------------------------------------
# tables and figures (each plot function draws into a given matplotlib ``ax``)
# ------------------------------------------------------------------------------------

_NAMES = {"pl": "Plackett-Luce", "bt": "Bradley-Terry"}


def render_accuracy_table(rows):
    """Markdown table of :func:`accuracy_table` rows."""
    lines = ["| loss | n_points | GD steps | blocks | heads | width | median rel. error "
             "| worst rel. error | tasks |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {_NAMES[r['kind']]} | {r['n_points']} | {r['steps']} | "
                     f"{r['n_layer']} | {r['n_head']} | {r['n_embd']} | "
                     f"{r['median']:.1e} | {r['max']:.1e} | {r['n_tasks']} |")
    return "\n".join(lines)


def render_ablation_table(results):
    """Markdown table of :func:`ablation_errors` results (one per loss)."""
    cols = ("full",) + ABLATIONS
    lines = ["| loss | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for res in results:
        cells = []
        for col in cols:
            s = res[col]
            cells.append(f"{s['median']:.1e} ({s['max']:.1e})")
        lines.append(f"| {_NAMES[res['kind']]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_probe(probe):
    """Markdown summary of :func:`probe_trained_model`."""
    cfg = probe["config"]
    rows = ["| model | top-example mass | Spearman with reward | Pearson with PL "
            "normaliser weights at the model's y_hat | the same at y_hat = 0 |",
            "|---|---:|---:|---:|---:|"]
    for name, key in (("trained: E {} · {} layers · {} heads".format(
            cfg["n_embd"], cfg["n_layer"], cfg["n_head"]), "trained"),
            ("PL construction (1 step)", "construction")):
        s = probe[key]["summary"]
        rows.append(f"| {name} | {s['max_top_mass']:.2f} {tuple(s['max_top_mass_at'])} | "
                    f"{s['max_spearman']:.2f} {tuple(s['max_spearman_at'])} | "
                    f"{s['max_pearson_normaliser']:.2f} "
                    f"{tuple(s['max_pearson_normaliser_at'])} | "
                    f"{s['max_pearson_normaliser_y0']:.2f} "
                    f"{tuple(s['max_pearson_normaliser_y0_at'])} |")
    u = probe["trained"]["summary"]["uniform_top_mass"]
    return ("Largest value over layers and heads, (layer, head) in brackets.\n\n"
            + "\n".join(rows)
            + f"\n\nUniform attention puts {u:.3f} of the mass on the best example.")


def plot_match(ax, target, pred, title=""):
    """Coordinates of the construction's prediction against GD's."""
    target = np.asarray(target).ravel()
    pred = np.asarray(pred).ravel()
    lim = float(np.max(np.abs(target))) * 1.1 if target.size else 1.0
    ax.plot([-lim, lim], [-lim, lim], color="0.7", lw=1)
    ax.scatter(target, pred, s=10)
    ax.set_xlabel("gradient descent (float64)")
    ax.set_ylabel("transformer (C, float32)")
    ax.set_title(title)
    return ax


def plot_constant_sweep(ax, rows, name, label=None):
    """Median (line) and worst (dashed) error as one constant grows."""
    v = [r["value"] for r in rows]
    line, = ax.loglog(v, [max(r["median"], 1e-9) for r in rows], marker="o",
                      label=label or name)
    ax.loglog(v, [max(r["max"], 1e-9) for r in rows], ls="--", color=line.get_color())
    ax.axhline(1e-3, color="0.6", lw=0.8, ls=":")
    ax.axhline(1e-2, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel({"beta_delta": "ranking inverse temperature x reward gap (beta delta)",
                   "mask": "masking logit",
                   "inverse_square_scale": "1 / FFN input scale for squares"}.get(name, name))
    ax.set_ylabel("relative error vs GD")
    return ax


def plot_ablations(ax, results):
    """Median error (bars; worst as a dot) of the full construction and each ablation."""
    cols = ("full",) + ABLATIONS
    width = 0.8 / max(len(results), 1)
    for i, res in enumerate(results):
        x = np.arange(len(cols)) + (i - (len(results) - 1) / 2) * width
        med = [min(max(float(res[c]["median"]), 1e-9), 1e30) for c in cols]
        worst = [min(max(float(res[c]["max"]), 1e-9), 1e30) for c in cols]
        ax.bar(x, med, width, label=_NAMES[res["kind"]])
        ax.scatter(x, worst, color="k", s=8, zorder=3)
        for xi, c in zip(x, cols):
            if not np.isfinite(float(res[c]["median"])):
                ax.text(xi, 1e30, "overflow", ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cols)))
    ax.set_xticklabels([c.replace("_", "\n") for c in cols])
    ax.set_ylabel("relative error vs GD")
    ax.legend()
    return ax


def plot_blocks(ax, results):
    """Error against the number of ranking (PL) / pair (BT) blocks per step."""
    for res in results:
        b = [r["blocks_per_step"] for r in res["blocks"]]
        ax.semilogy(b, [max(r["median"], 1e-9) for r in res["blocks"]], marker="o",
                    label=f"{_NAMES[res['kind']]} (needs {res['blocks_needed']})")
    ax.set_xlabel("ranking / pair blocks per GD step")
    ax.set_ylabel("median relative error vs GD")
    ax.legend()
    return ax


def plot_depth(ax, depth):
    """Median error against full GD vs the number of examples, one line per blocks
    per step."""
    for b, med in depth["curves"].items():
        ax.semilogy(depth["n_points"], [max(m, 1e-9) for m in med], marker="o",
                    label=f"{b} blocks per step")
    ax.set_xlabel("examples in the sequence (n_points)")
    ax.set_ylabel("median relative error vs full GD")
    ax.legend()
    return ax


def plot_probe(ax, probe, key="spearman_reward", title=None):
    """Heat map (layer x head) of one probe statistic."""
    a = np.asarray(probe[key])
    lim = max(float(np.max(np.abs(a))), 1e-9)
    if a.min() < 0:
        im = ax.imshow(a, cmap="coolwarm", vmin=-lim, vmax=lim, aspect="auto")
    else:
        im = ax.imshow(a, cmap="viridis", vmin=0, vmax=lim, aspect="auto")
    ax.set_xticks(range(a.shape[1]))
    ax.set_yticks(range(a.shape[0]))
    for (i, j), val in np.ndenumerate(a):
        ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title or key.replace("_", " "))
    ax.figure.colorbar(im, ax=ax)
    return ax
