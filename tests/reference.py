"""Float64 NumPy reference implementation of the icalign model and losses.

Written directly from SPEC.md (sections 2-4), independently of the C core, and used
by the test-suite as the ground truth the C core is checked against.  Everything here
is plain NumPy in float64, with exact hand-written backward passes.

Public functions
----------------
param_shapes(cfg)                                   -> dict name -> shape (ordered)
random_params(cfg, rng, scale=1.0)                  -> dict name -> float64 array
forward(params, cfg, xs, ys, rs)                    -> (pred, rhat, cache)
backward(params, cfg, cache, dpred, drhat=None)     -> dict name -> gradient
policy_reward(a, b, reward)                         -> (rho, drho/da)
prefix_loss(yhat, Y, r, objective, reward)          -> (loss, dyhat)
sequence_loss(pred, ys, rs, objective, reward)      -> (loss, dpred)
reward_head_loss(rhat, rs, weight)                  -> (loss, drhat)
total_loss_and_grad(params, cfg, xs, ys, rs, objective, reward, reward_weight)
                                                    -> (loss, grads)
adam_update(p, g, m, v, t, lr, beta1, beta2, eps)   -> (p, m, v)

`cfg` is any object with attributes n_dims, n_points, n_embd, n_layer, n_head,
softmax, ffn, causal and optionally reward_head (default False) and layernorm
(default True; False turns every LayerNorm into its elementwise affine map
x * weight + bias, without centring or scaling).
"""

import math

import numpy as np

LN_EPS = 1e-5
COS_EPS = 1e-8
_GELU_C = math.sqrt(2.0 / math.pi)


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------

def _has_reward_head(cfg):
    return bool(getattr(cfg, "reward_head", False))


def _has_layernorm(cfg):
    return bool(getattr(cfg, "layernorm", True))


def param_shapes(cfg):
    """Ordered dict of parameter name -> shape (SPEC section 2)."""
    d, E = cfg.n_dims, cfg.n_embd
    shapes = {
        "read_in.weight": (d, E),
        "read_in.bias": (E,),
        "wpe": (3 * cfg.n_points, E),
    }
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        shapes[p + "ln_1.weight"] = (E,)
        shapes[p + "ln_1.bias"] = (E,)
        shapes[p + "attn.c_attn.weight"] = (E, 3 * E)
        shapes[p + "attn.c_attn.bias"] = (3 * E,)
        shapes[p + "attn.c_proj.weight"] = (E, E)
        shapes[p + "attn.c_proj.bias"] = (E,)
        if cfg.ffn:
            shapes[p + "ln_2.weight"] = (E,)
            shapes[p + "ln_2.bias"] = (E,)
            shapes[p + "mlp.c_fc.weight"] = (E, 4 * E)
            shapes[p + "mlp.c_fc.bias"] = (4 * E,)
            shapes[p + "mlp.c_proj.weight"] = (4 * E, E)
            shapes[p + "mlp.c_proj.bias"] = (E,)
    shapes["ln_f.weight"] = (E,)
    shapes["ln_f.bias"] = (E,)
    shapes["read_out.weight"] = (E, d)
    shapes["read_out.bias"] = (d,)
    if _has_reward_head(cfg):
        shapes["read_reward.weight"] = (E, 1)
        shapes["read_reward.bias"] = (1,)
    return shapes


def random_params(cfg, rng, scale=1.0):
    """Random float64 parameters with non-trivial values on every path.

    Dense weights ~ N(0, scale^2 / fan_in); wpe ~ N(0, (0.5 scale)^2); LayerNorm
    weights 1 + 0.1 N(0,1); all biases (LayerNorm biases included) 0.1 N(0,1).
    This is *not* the GPT-2 initialisation of the SPEC: it is meant to exercise
    every code path with O(1) activations in tests.
    """
    params = {}
    for name, shape in param_shapes(cfg).items():
        if name == "wpe":
            a = 0.5 * scale * rng.standard_normal(shape)
        elif name.endswith(".weight") and (".ln_" in name or name.startswith("ln_")):
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            a = 0.1 * rng.standard_normal(shape)
        else:  # dense (in, out) weight
            a = scale / math.sqrt(shape[0]) * rng.standard_normal(shape)
        params[name] = np.asarray(a, dtype=np.float64)
    return params


# --------------------------------------------------------------------------------------
# building blocks (forward returns (out, cache); backward returns input grad + param grads)
# --------------------------------------------------------------------------------------

def _layernorm(x, w, b, normalize=True):
    if not normalize:  # affine only: y = x * w + b
        return x * w + b, (x, None)
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)  # biased variance, as torch
    rstd = 1.0 / np.sqrt(var + LN_EPS)
    xhat = xc * rstd
    return xhat * w + b, (xhat, rstd)


def _layernorm_backward(dy, w, cache):
    xhat, rstd = cache
    E = xhat.shape[-1]
    dw = (dy * xhat).reshape(-1, E).sum(axis=0)
    db = dy.reshape(-1, E).sum(axis=0)
    if rstd is None:  # affine only
        return dy * w, dw, db
    dxhat = dy * w
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dw, db


def _linear_backward(dy, x, W):
    """y = x @ W + b with x (..., in); returns dx, dW, db."""
    dx = dy @ W.T
    dW = x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
    db = dy.reshape(-1, dy.shape[-1]).sum(axis=0)
    return dx, dW, db


def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + 0.044715 * x ** 3)))


def _gelu_grad(x):
    t = np.tanh(_GELU_C * (x + 0.044715 * x ** 3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * x * x)


def _causal_mask(T):
    """mask[i, j] = True where query i may attend to key j (j <= i)."""
    return np.tril(np.ones((T, T), dtype=bool))


def _split_heads(x, H):
    B, T, E = x.shape
    return x.reshape(B, T, H, E // H).transpose(0, 2, 1, 3)  # (B, H, T, hs)


def _merge_heads(x):
    B, H, T, hs = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * hs)


def _attention(a, Wa, ba, Wp, bp, cfg):
    B, T, E = a.shape
    H = cfg.n_head
    hs = E // H
    scale = 1.0 / math.sqrt(hs)
    qkv = a @ Wa + ba
    q = _split_heads(qkv[..., 0:E], H)
    k = _split_heads(qkv[..., E:2 * E], H)
    v = _split_heads(qkv[..., 2 * E:3 * E], H)
    S = (q @ k.transpose(0, 1, 3, 2)) * scale  # (B, H, T, T)
    mask = _causal_mask(T) if cfg.causal else None
    if cfg.softmax:
        if mask is not None:
            S = np.where(mask, S, -np.inf)
        S = S - S.max(axis=-1, keepdims=True)
        P = np.exp(S)
        P /= P.sum(axis=-1, keepdims=True)
    else:
        P = S * mask if mask is not None else S
    O = _merge_heads(P @ v)  # (B, T, E), heads in order
    out = O @ Wp + bp
    return out, (a, q, k, v, P, O, mask, scale)


def _attention_backward(dout, Wa, Wp, cfg, cache):
    a, q, k, v, P, O, mask, scale = cache
    H = cfg.n_head
    dO, dWp, dbp = _linear_backward(dout, O, Wp)
    dOh = _split_heads(dO, H)                      # (B, H, T, hs)
    dv = P.transpose(0, 1, 3, 2) @ dOh
    dP = dOh @ v.transpose(0, 1, 3, 2)            # (B, H, T, T)
    if cfg.softmax:
        dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
    else:
        dS = dP * mask if mask is not None else dP
    dq = (dS @ k) * scale
    dk = (dS.transpose(0, 1, 3, 2) @ q) * scale
    dqkv = np.concatenate([_merge_heads(dq), _merge_heads(dk), _merge_heads(dv)], axis=-1)
    da, dWa, dba = _linear_backward(dqkv, a, Wa)
    return da, dWa, dba, dWp, dbp


def _mlp(a, Wfc, bfc, Wp, bp):
    u = a @ Wfc + bfc
    g = _gelu(u)
    return g @ Wp + bp, (a, u, g)


def _mlp_backward(dout, Wfc, Wp, cache):
    a, u, g = cache
    dg, dWp, dbp = _linear_backward(dout, g, Wp)
    du = dg * _gelu_grad(u)
    da, dWfc, dbfc = _linear_backward(du, a, Wfc)
    return da, dWfc, dbfc, dWp, dbp


# --------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------

def build_tokens(xs, ys, rs):
    """Interleave (x_n, y_n, [r_n,0..0]) -> z (B, 3N, d)."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    rs = np.asarray(rs, dtype=np.float64)
    B, N, d = xs.shape
    rs = rs.reshape(B, N)
    z = np.zeros((B, 3 * N, d))
    z[:, 0::3] = xs
    z[:, 1::3] = ys
    z[:, 2::3, 0] = rs
    return z


def forward(params, cfg, xs, ys, rs):
    """Model forward pass.

    xs, ys: (B, N, d); rs: (B, N) (or (B, N, 1)); N <= n_points.
    Returns (pred, rhat, cache): pred (B, N, d); rhat (B, N) when cfg.reward_head,
    else None; cache is opaque, for `backward`.
    """
    z = build_tokens(xs, ys, rs)
    B, T, d = z.shape
    N = T // 3
    if N > cfg.n_points:
        raise ValueError(f"N={N} exceeds n_points={cfg.n_points}")
    h = z @ params["read_in.weight"] + params["read_in.bias"] + params["wpe"][:T]
    layers = []
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        lc = {}
        a1, lc["ln_1"] = _layernorm(h, params[p + "ln_1.weight"], params[p + "ln_1.bias"],
                                      _has_layernorm(cfg))
        att, lc["attn"] = _attention(a1, params[p + "attn.c_attn.weight"],
                                     params[p + "attn.c_attn.bias"],
                                     params[p + "attn.c_proj.weight"],
                                     params[p + "attn.c_proj.bias"], cfg)
        h = h + att
        if cfg.ffn:
            a2, lc["ln_2"] = _layernorm(h, params[p + "ln_2.weight"], params[p + "ln_2.bias"],
                                          _has_layernorm(cfg))
            m, lc["mlp"] = _mlp(a2, params[p + "mlp.c_fc.weight"], params[p + "mlp.c_fc.bias"],
                                params[p + "mlp.c_proj.weight"], params[p + "mlp.c_proj.bias"])
            h = h + m
        layers.append(lc)
    hf, ln_f_cache = _layernorm(h, params["ln_f.weight"], params["ln_f.bias"],
                                _has_layernorm(cfg))
    pred = hf[:, 0::3] @ params["read_out.weight"] + params["read_out.bias"]
    rhat = None
    if _has_reward_head(cfg):
        rhat = (hf[:, 1::3] @ params["read_reward.weight"] + params["read_reward.bias"])[..., 0]
    cache = {"z": z, "layers": layers, "ln_f": ln_f_cache, "hf": hf, "T": T}
    return pred, rhat, cache


def backward(params, cfg, cache, dpred, drhat=None):
    """Exact gradients of sum(dpred*pred) + sum(drhat*rhat) w.r.t. every parameter."""
    grads = {name: np.zeros(shape) for name, shape in param_shapes(cfg).items()}
    hf, T, z = cache["hf"], cache["T"], cache["z"]
    dpred = np.asarray(dpred, dtype=np.float64)

    dhf = np.zeros_like(hf)
    dx0, grads["read_out.weight"], grads["read_out.bias"] = _linear_backward(
        dpred, hf[:, 0::3], params["read_out.weight"])
    dhf[:, 0::3] = dx0
    if _has_reward_head(cfg) and drhat is not None:
        dr = np.asarray(drhat, dtype=np.float64)[..., None]  # (B, N, 1)
        dx1, grads["read_reward.weight"], grads["read_reward.bias"] = _linear_backward(
            dr, hf[:, 1::3], params["read_reward.weight"])
        dhf[:, 1::3] = dx1

    dh, grads["ln_f.weight"], grads["ln_f.bias"] = _layernorm_backward(
        dhf, params["ln_f.weight"], cache["ln_f"])

    for l in reversed(range(cfg.n_layer)):
        p = f"h.{l}."
        lc = cache["layers"][l]
        if cfg.ffn:
            da2, dWfc, dbfc, dWp, dbp = _mlp_backward(
                dh, params[p + "mlp.c_fc.weight"], params[p + "mlp.c_proj.weight"], lc["mlp"])
            grads[p + "mlp.c_fc.weight"], grads[p + "mlp.c_fc.bias"] = dWfc, dbfc
            grads[p + "mlp.c_proj.weight"], grads[p + "mlp.c_proj.bias"] = dWp, dbp
            dx, grads[p + "ln_2.weight"], grads[p + "ln_2.bias"] = _layernorm_backward(
                da2, params[p + "ln_2.weight"], lc["ln_2"])
            dh = dh + dx
        da1, dWa, dba, dWp, dbp = _attention_backward(
            dh, params[p + "attn.c_attn.weight"], params[p + "attn.c_proj.weight"], cfg,
            lc["attn"])
        grads[p + "attn.c_attn.weight"], grads[p + "attn.c_attn.bias"] = dWa, dba
        grads[p + "attn.c_proj.weight"], grads[p + "attn.c_proj.bias"] = dWp, dbp
        dx, grads[p + "ln_1.weight"], grads[p + "ln_1.bias"] = _layernorm_backward(
            da1, params[p + "ln_1.weight"], lc["ln_1"])
        dh = dh + dx

    _, grads["read_in.weight"], grads["read_in.bias"] = _linear_backward(
        dh, z, params["read_in.weight"])
    grads["wpe"][:T] = dh.sum(axis=0)
    return grads


# --------------------------------------------------------------------------------------
# losses (SPEC section 3)
# --------------------------------------------------------------------------------------

def policy_reward(a, Y, reward):
    """rho(a, Y_j) for a (d,) and Y (k, d).  Returns (rho (k,), drho/da (k, d))."""
    a = np.asarray(a, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if reward == "cosine":
        na_raw = np.linalg.norm(a)
        na = max(na_raw, COS_EPS)
        nY = np.maximum(np.linalg.norm(Y, axis=1), COS_EPS)
        dot = Y @ a
        rho = dot / (na * nY)
        grad = Y / (na * nY)[:, None]
        if na_raw > COS_EPS:  # d(1/|a|)/da = -a/|a|^3 ; clamped branch is constant
            grad = grad - (rho / (na * na))[:, None] * a[None, :]
        return rho, grad
    if reward == "neg_sq":
        diff = a[None, :] - Y
        return -(diff * diff).sum(axis=1), -2.0 * diff
    raise ValueError(f"unknown reward {reward!r}")


def _logsumexp(s):
    m = s.max()
    return m + math.log(np.exp(s - m).sum())


def _pl_from_scores(s):
    """L = sum_i [logsumexp(s[i:]) - s_i]; returns (L, dL/ds)."""
    k = s.shape[0]
    lse = np.array([_logsumexp(s[i:]) for i in range(k)])
    loss = float((lse - s).sum())
    # M[i, j] = softmax of s[i:] at j (0 for j < i);  dL/ds_j = sum_i M[i, j] - 1
    upper = np.triu(np.ones((k, k), dtype=bool))
    M = np.exp(np.where(upper, s[None, :] - lse[:, None], -np.inf))
    return loss, M.sum(axis=0) - 1.0


def _bt_from_scores(s):
    """Mean over i<j of -log sigmoid(s_i - s_j) = softplus(s_j - s_i)."""
    k = s.shape[0]
    if k < 2:
        return 0.0, np.zeros(k)
    iu, ju = np.triu_indices(k, 1)
    diff = s[ju] - s[iu]
    npairs = iu.shape[0]
    loss = float(np.logaddexp(0.0, diff).sum() / npairs)
    sig = 0.5 * (1.0 + np.tanh(0.5 * diff))  # sigmoid, stable
    ds = np.zeros(k)
    np.add.at(ds, ju, sig / npairs)
    np.add.at(ds, iu, -sig / npairs)
    return loss, ds


def prefix_loss(yhat, Y, r, objective="pl", reward="cosine"):
    """Alignment loss of one prediction yhat (d,) against k pairs (Y (k,d), r (k,)).

    Pairs are sorted by r descending (ties stable by index).  Returns (loss, dyhat).
    """
    Y = np.asarray(Y, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    order = np.argsort(-r, kind="stable")
    s, ds_dy = policy_reward(yhat, Y[order], reward)
    if objective == "pl":
        loss, ds = _pl_from_scores(s)
    elif objective == "bt":
        loss, ds = _bt_from_scores(s)
    else:
        raise ValueError(f"unknown objective {objective!r}")
    return loss, ds @ ds_dy


def sequence_loss(pred, ys, rs, objective="pl", reward="cosine"):
    """SPEC section 3 training objective: mean over b of mean over n=2..N-1 of
    prefix_loss(pred[b,n], ys[b,:n], rs[b,:n]).  Returns (loss, dpred)."""
    pred = np.asarray(pred, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    B, N, d = pred.shape
    rs = np.asarray(rs, dtype=np.float64).reshape(B, N)
    if N < 3:
        raise ValueError("sequence_loss needs N >= 3")
    count = B * (N - 2)
    loss = 0.0
    dpred = np.zeros_like(pred)
    for b in range(B):
        for n in range(2, N):
            l, g = prefix_loss(pred[b, n], ys[b, :n], rs[b, :n], objective, reward)
            loss += l
            dpred[b, n] = g / count
    return loss / count, dpred


def reward_head_loss(rhat, rs, weight=1.0):
    """weight * mean((rhat - rs)^2).  Returns (loss, drhat)."""
    rhat = np.asarray(rhat, dtype=np.float64)
    rs = np.asarray(rs, dtype=np.float64).reshape(rhat.shape)
    diff = rhat - rs
    return float(weight * (diff * diff).mean()), weight * 2.0 * diff / diff.size


def total_loss_and_grad(params, cfg, xs, ys, rs, objective="pl", reward="cosine",
                        reward_weight=1.0):
    """Forward + sequence loss (+ reward-head loss) + backward.  Returns (loss, grads)."""
    pred, rhat, cache = forward(params, cfg, xs, ys, rs)
    loss, dpred = sequence_loss(pred, ys, rs, objective, reward)
    drhat = None
    if _has_reward_head(cfg):
        lr_, drhat = reward_head_loss(rhat, rs, reward_weight)
        loss += lr_
    return loss, backward(params, cfg, cache, dpred, drhat)


# --------------------------------------------------------------------------------------
# optimiser
# --------------------------------------------------------------------------------------

def adam_update(p, g, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One PyTorch-style Adam step (t = 1-based step count after increment).
    Returns new (p, m, v); inputs are not modified."""
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    mhat = m / (1.0 - beta1 ** t)
    vhat = v / (1.0 - beta2 ** t)
    p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p, m, v
