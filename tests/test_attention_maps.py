"""Transformer.attention_maps: the attention weights of the C forward pass."""
import numpy as np
import pytest

import icalign as ica
from conftest import as64, model_with_reference_params, task_arrays

import reference as ref

CASES = [
    ("softmax-causal", dict(n_dims=3, n_points=6, n_embd=12, n_layer=2, n_head=3)),
    ("softmax-noncausal-noln", dict(n_dims=3, n_points=5, n_embd=8, n_layer=3, n_head=2,
                                    causal=False, layernorm=False)),
    ("linear-causal-noffn", dict(n_dims=4, n_points=5, n_embd=8, n_layer=2, n_head=1,
                                 softmax=False, ffn=False)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_attention_maps_equal_the_reference(case):
    cfg = ica.ModelConfig(**case[1])
    model, params = model_with_reference_params(cfg, scale=0.5)
    xs, ys, rs = task_arrays(4, cfg.n_points, cfg.n_dims, seed=2)
    maps = model.attention_maps(xs, ys, rs)
    T = 3 * cfg.n_points
    assert maps.shape == (4, cfg.n_layer, cfg.n_head, T, T) and maps.dtype == np.float32
    _, _, cache = ref.forward(params, cfg, *as64(xs, ys, rs))
    want = np.stack([lc["attn"][4] for lc in cache["layers"]], axis=1)  # (B, L, H, T, T)
    want = np.where(np.isfinite(want), want, 0.0)
    scale = np.abs(want).max()
    assert np.abs(maps - want).max() <= 1e-4 * scale
    if cfg.causal:  # the mask: nothing above the diagonal
        assert np.all(np.triu(maps, 1) == 0.0)
    if cfg.softmax:
        np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
        assert np.all(maps >= 0.0)


def test_attention_maps_fewer_points_and_threads(restore_threads):
    cfg = ica.ModelConfig(n_dims=5, n_points=8, n_embd=12, n_layer=2, n_head=2)
    model, _ = model_with_reference_params(cfg)
    xs, ys, rs = task_arrays(11, 8, 5, seed=5)
    ica.set_num_threads(1)
    one = model.attention_maps(xs[:, :5], ys[:, :5], rs[:, :5])
    assert one.shape == (11, 2, 2, 15, 15)
    for threads in (2, 3):
        ica.set_num_threads(threads)
        assert np.array_equal(model.attention_maps(xs[:, :5], ys[:, :5], rs[:, :5]), one)
    # a causal prefix sees the same weights as the whole sequence
    full = model.attention_maps(xs, ys, rs)
    np.testing.assert_array_equal(full[:, :, :, :15, :15], one)
    # chunks of the batch give the same maps
    np.testing.assert_array_equal(model.attention_maps(xs, ys, rs, batch_size=4), full)
    # the forward pass is unchanged by keeping the maps
    np.testing.assert_array_equal(model.predict(xs, ys, rs), model.predict(xs, ys, rs))


def test_attention_maps_validate_inputs():
    model = ica.Transformer(ica.ModelConfig(n_dims=2, n_points=3, n_embd=4, n_layer=1,
                                            n_head=1))
    with pytest.raises((ValueError, TypeError)):
        model.attention_maps(np.zeros((1, 4, 2), np.float32), np.zeros((1, 4, 2), np.float32),
                             np.zeros((1, 4), np.float32))


def test_layernorm_option_leaves_default_models_alone():
    cfg = ica.ModelConfig()
    assert "layernorm" not in cfg.to_dict()  # names and fingerprints of models unchanged
    off = cfg.replace(layernorm=False)
    assert off.to_dict()["layernorm"] is False
    assert ica.ModelConfig.from_dict(off.to_dict()) == off
    a, b = ica.Transformer(cfg, seed=3), ica.Transformer(off, seed=3)
    assert a.parameter_names() == b.parameter_names()  # same parameter table
    assert "layernorm=False" in repr(b) and "layernorm" not in repr(a)
