"""Bad input raises a precise ValueError/TypeError, never a crash."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import icalign as ica

C = ica.ModelConfig
CFG = C(n_dims=3, n_points=6, n_embd=12, n_layer=1, n_head=3)


@pytest.fixture(scope="module")
def model():
    return ica.Transformer(CFG, seed=0)


def good(B=2, N=6, d=3):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((B, N, d)).astype(np.float32),
            rng.standard_normal((B, N, d)).astype(np.float32),
            rng.random((B, N)).astype(np.float32))


BAD_CALLS = [
    # (description, callable(model), exception type, regex the message must match)
    ("xs of rank 2", lambda m: m.predict(good()[0][0], *good()[1:]), ValueError,
     r"xs must have shape \(B, N, d=3\), got shape \(6, 3\)"),
    ("ys batch mismatch", lambda m: m.predict(good()[0], good(B=3)[1], good()[2]), ValueError,
     r"ys must have shape \(B=2, N=6, d=3\) like xs, got \(3, 6, 3\)"),
    ("wrong d", lambda m: m.predict(*good(d=4)), ValueError,
     r"xs must have shape \(B, N, d=3\), got \(2, 6, 4\) \(axis 2 is 4, expected 3\)"),
    ("rs wrong length", lambda m: m.predict(*good()[:2], good()[2][:, :5]), ValueError,
     r"rs must have shape \(B=2, N=6\) or \(B, N, 1\)"),
    ("rs trailing axis 2", lambda m: m.predict(*good()[:2], np.zeros((2, 6, 2))), ValueError,
     r"rs must have shape .* \(axis 2 is 2, expected 1\)"),
    ("N beyond n_points", lambda m: m.predict(*good(N=7)), ValueError,
     r"N=7 is outside \[1, n_points=6\]"),
    ("NaN in ys", lambda m: m.predict(good()[0], np.full((2, 6, 3), np.nan), good()[2]),
     ValueError, r"ys holds a non-finite value \(nan\) at flat index 0"),
    ("inf in rs", lambda m: m.predict(*good()[:2], np.full((2, 6), np.inf)), ValueError,
     r"rs holds a non-finite value \(inf\)"),
    ("complex xs", lambda m: m.predict(good()[0] * 1j, *good()[1:]), TypeError,
     r"xs has dtype complex.*expected a real numeric dtype"),
    ("string ys", lambda m: m.predict(good()[0], np.full((2, 6, 3), "a"), good()[2]),
     TypeError, r"ys has dtype <U1"),
    ("object rs", lambda m: m.predict(*good()[:2], object()), TypeError,
     r"rs has dtype object"),
    ("empty batch", lambda m: m.predict(*good(B=0)), ValueError, r"batch size B = 0"),
    ("loss needs N >= 3", lambda m: m.loss_and_grad(*good(N=2)), ValueError,
     r"needs N >= 3 examples"),
    ("bad objective", lambda m: m.loss_and_grad(*good(), objective="dpo"), ValueError,
     r"objective must be 'pl' .* or 'bt' .*got 'dpo'"),
    ("bad reward", lambda m: m.step(*good(), reward="l1"), ValueError,
     r"reward must be 'cosine' or 'neg_sq', got 'l1'"),
    ("negative lr", lambda m: m.step(*good(), lr=-1.0), ValueError, r"lr must be a finite"),
    ("nan lr", lambda m: m.step(*good(), lr=float("nan")), ValueError, r"lr must be a finite"),
    ("predict_rewards without head", lambda m: m.predict_rewards(*good()), ValueError,
     r"reward_head=True"),
    ("pl_loss shape mismatch", lambda m: ica.pl_loss(good()[0], good(N=5)[1], good()[2]),
     ValueError, r"ys must have shape \(B=2, N=6, d=3\) like pred"),
    ("pl_loss nan pred", lambda m: ica.pl_loss(np.full((2, 6, 3), np.nan), *good()[1:]),
     ValueError, r"pred holds a non-finite value"),
    ("pl_loss too short", lambda m: ica.pl_loss(*good(N=2)), ValueError, r"N >= 3"),
]


@pytest.mark.parametrize("what,call,exc,pattern", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_raises_precise_error(model, what, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(model)


@pytest.mark.parametrize("kwargs,exc,pattern", [
    (dict(n_embd=10, n_head=3), ValueError, r"n_embd \(10\) must be divisible by n_head \(3\)"),
    (dict(n_layer=0), ValueError, r"n_layer must be >= 1, got 0"),
    (dict(n_head=-2), ValueError, r"n_head must be >= 1, got -2"),
    (dict(n_dims=2.5), TypeError, r"n_dims must be an int, got 2.5"),
    (dict(n_points=True), TypeError, r"n_points must be an int"),
    (dict(softmax="yes"), TypeError, r"softmax must be a bool"),
])
def test_bad_config_values(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        C(**kwargs)


def test_load_state_dict_lists_every_problem(model):
    sd = model.state_dict()
    del sd["wpe"], sd["ln_f.bias"]
    sd["extra.weight"] = np.zeros(3)
    sd["read_out.weight"] = np.zeros((3, 3))
    sd["read_in.bias"] = np.full(12, np.nan)
    with pytest.raises(ValueError) as info:
        model.load_state_dict(sd)
    msg = str(info.value)
    for part in ("missing entries ['wpe', 'ln_f.bias']", "unexpected entries ['extra.weight']",
                 "read_out.weight: shape (3, 3), expected (12, 3)",
                 "read_in.bias: holds non-finite values"):
        assert part in msg, msg
    # nothing was written
    assert np.isfinite(model.state_dict()["read_in.bias"]).all()


def test_bad_inputs_never_crash_the_interpreter():
    """Every bad call runs in a fresh interpreter: a segfault would fail here."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})
        import icalign as ica
        from test_errors import BAD_CALLS, CFG
        m = ica.Transformer(CFG, seed=0)
        for what, call, exc, pattern in BAD_CALLS:
            try:
                call(m)
            except exc:
                print("raised", what)
            else:
                print("NO ERROR", what)
        # hostile values that must not crash either
        for args in [(2**40, 1, 1, 0), (1, 1, 1, -1)]:
            try:
                ica.AlignmentTask(5, 20).sample(*args[:1], seed=args[3])
            except ValueError:
                print("raised hostile")
        print("done")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("raised ") == len(BAD_CALLS) + 2, out.stdout
    assert "NO ERROR" not in out.stdout and out.stdout.strip().endswith("done")
