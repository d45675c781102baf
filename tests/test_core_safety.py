"""Safety of the C core and its binding: no crash from an uninitialised model,
sizes whose products overflow, non-finite values or extreme scores.

Calls that could crash the interpreter run in a fresh subprocess, so that a
segfault fails the test instead of killing pytest. The size checks of the C
API are exercised through ctypes on the extension itself, with sizes whose
buffers could never exist: the checks must refuse them before touching (or
allocating) any memory.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import icalign as ica
from icalign import _core

ROOT_TESTS = __file__.rsplit("/", 1)[0]


def run_isolated(body, timeout=120):
    """Run `body` in a fresh interpreter; return its stdout (fails on a crash)."""
    script = "import sys\nsys.path.insert(0, %r)\n" % ROOT_TESTS + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"crashed or failed (rc {out.returncode}):\n{out.stderr[-3000:]}"
    return out.stdout


# ------------------------------------------------------- uninitialised model

UNINIT_CALLS = {
    "params": "m.params",
    "grads": "m.grads",
    "adam_m": "m.adam_m",
    "adam_v": "m.adam_v",
    "adam_steps": "m.adam_steps",
    "set adam_steps": "setattr(m, 'adam_steps', 3)",
    "tensors": "m.tensors()",
    "forward": "m.forward(x, y, r)",
    "loss_and_grad": "m.loss_and_grad(x, y, r)",
    "step": "m.step(x, y, r, 1e-3)",
    "adam_update": "m.adam_update(1e-3)",
}


def test_uninitialised_model_raises_instead_of_crashing():
    """Model.__new__ without __init__ holds no C model: every entry point must
    raise a clear RuntimeError, never dereference NULL."""
    body = """
        import numpy as np
        from icalign import _core
        x = np.zeros((1, 4, 3), np.float32); y = x.copy(); r = np.zeros((1, 4), np.float32)
        calls = %r
        for name, expr in calls.items():
            m = _core.Model.__new__(_core.Model)
            try:
                eval(expr)
            except RuntimeError as e:
                assert "not initialised" in str(e), str(e)
                print("raised", name)
            else:
                print("NO ERROR", name)
    """ % UNINIT_CALLS
    out = run_isolated(body)
    for name in UNINIT_CALLS:
        assert f"raised {name}\n" in out, out


def test_failed_init_leaves_a_model_that_raises():
    body = """
        from icalign import _core
        m = _core.Model.__new__(_core.Model)
        try:
            m.__init__(3, 6, 10, 1, 3, True, True, True, False, 0)  # 10 % 3 != 0
        except ValueError:
            pass
        try:
            m.params
        except RuntimeError:
            print("ok")
    """
    assert run_isolated(body).strip() == "ok"


def test_adam_steps_setter_respects_the_busy_flag():
    """Setting adam_steps while another thread runs a call on the model is
    refused like every other mutator."""
    body = """
        import threading, numpy as np
        import icalign as ica
        from icalign import _core
        ica.set_num_threads(1)
        m = _core.Model(5, 20, 64, 4, 4, True, True, True, False, 0)
        x, y, r, *_ = _core.sample_tasks(64, 20, 5, 0)
        done = threading.Event()
        def work():
            for _ in range(5):
                m.step(x, y, r, 1e-4)
            done.set()
        t = threading.Thread(target=work)
        t.start()
        refused = 0
        while not done.is_set():
            try:
                m.adam_steps = 0
            except RuntimeError as e:
                assert "in use by another thread" in str(e)
                refused += 1
        t.join()
        print("refused", refused)
    """
    out = run_isolated(body, timeout=300)
    assert int(out.split()[-1]) > 0, out


# ------------------------------------------------------------ size overflow

CTYPES_PRELUDE = """
    import ctypes
    from icalign import _core
    lib = ctypes.CDLL(_core.__file__)
    lib.ica_last_error.restype = ctypes.c_char_p
    F = ctypes.POINTER(ctypes.c_float)
    NOMEM, ARGUMENT = 3, 1
    def err():
        return lib.ica_last_error().decode()
    class Config(ctypes.Structure):
        _fields_ = [(n, ctypes.c_int) for n in (
            "n_dims", "n_points", "n_embd", "n_layer", "n_head", "softmax", "ffn", "causal",
            "reward_head")]
"""


def test_c_api_refuses_overflowing_sizes_before_touching_memory():
    """Sizes whose products overflow int32 (B*N, d*d, B*T) and size_t (B*N*d):
    each public call returns ICA_ERR_NOMEM naming the buffer, with NULL data
    pointers that would crash if it touched them."""
    body = CTYPES_PRELUDE + """
    big = 2**31 - 1
    loss = ctypes.c_float()
    # sequence_loss: B*N*d overflows size_t, or (B*N beyond int32) exceeds any buffer
    for B, N, d in [(big, big, big), (2**25, 2**25, 1), (2**24, 2**24, 2**24)]:
        st = lib.ica_sequence_loss(ctypes.byref(loss), None, None, None, None, B, N, d, 0, 0)
        assert st == NOMEM, (st, err())
        print("sequence_loss", B, N, d, err())
    # task sampler: B*N*d, and d*d for the task weights
    for B, N, d in [(big, big, big), (1, 1, 2**25)]:
        st = lib.ica_sample_tasks(None, None, None, None, None, None, B, N, d,
                                  ctypes.c_uint64(0), ctypes.c_uint64(0), ctypes.c_double(0.0))
        assert st == NOMEM, (st, err())
        print("sample_tasks", B, N, d, err())
    # baselines: B*n_t*d output and d*d GD weights
    t = (ctypes.c_int * 1)(1)
    for B, N, d, n_t in [(big, 1, big, 1), (1, 1, 2**25, 1)]:
        st = lib.ica_gd_baseline(None, None, None, None, t, B, N, d, n_t, 1, ctypes.c_float(0.1),
                                 ctypes.c_uint64(0), 0, 0)
        assert st == NOMEM, (st, err())
        if B == big:  # the simple baselines and the optimum have no d x d buffer
            st = lib.ica_simple_baseline(None, None, None, t, B, N, d, n_t, 0,
                                         ctypes.c_float(1.0))
            assert st == NOMEM, (st, err())
            st = lib.ica_surrogate_optimum(None, None, None, None, None, t, B, N, d, n_t, 0, 0,
                                           1, ctypes.c_float(0.02), ctypes.c_float(1e-6))
            assert st == NOMEM, (st, err())
        print("baselines", B, N, d, err())
    # model: B * 3N token rows beyond int32
    model = ctypes.c_void_p()
    cfg = Config(3, 1000, 8, 1, 2, 1, 1, 1, 0)
    assert lib.ica_model_create(ctypes.byref(model), ctypes.byref(cfg), ctypes.c_uint64(0)) == 0
    for call in ("forward", "loss_and_grad", "step"):
        if call == "forward":
            st = lib.ica_model_forward(model, None, None, None, None, None, 2**30, 1000)
        elif call == "loss_and_grad":
            st = lib.ica_model_loss_and_grad(model, ctypes.byref(loss), None, None, None,
                                             2**30, 1000, 0, 0, ctypes.c_float(1.0))
        else:
            st = lib.ica_model_step(model, ctypes.byref(loss), None, None, None, 2**30, 1000,
                                    0, 0, ctypes.c_float(1.0), ctypes.c_float(1e-3))
        assert st == NOMEM, (st, err())
        print("model", call, err())
    lib.ica_model_free(model)
    # NULL model: an error, not a crash
    st = lib.ica_model_forward(None, None, None, None, None, None, 1, 1)
    assert st == ARGUMENT, (st, err())
    print("done")
    """
    out = run_isolated(body)
    assert out.strip().endswith("done"), out
    assert "more than the 281474976710656 one buffer may hold" in out
    assert "token rows" in out


def test_binding_refuses_oversized_outputs_before_allocating():
    """Outputs the binding allocates are size-checked first: ValueError (does
    not fit an array) or MemoryError (cannot be allocated), never a crash."""
    body = """
        import numpy as np
        from icalign import _core
        big = 2**31 - 1
        for args in [(big, big, big, 0), (2**20, 2**20, 2**20, 0), (1, 1, 2**25, 0)]:
            try:
                _core.sample_tasks(*args)
            except (ValueError, MemoryError) as e:
                print(type(e).__name__, e)
            else:
                print("NO ERROR", args)
        y = np.zeros((1, 3, 2), np.float32); r = np.zeros((1, 3), np.float32)
        try:
            _core.simple_baseline(y, r, [1] * 3, "mean")
        except Exception as e:
            print("unexpected", e)
        print("done")
    """
    out = run_isolated(body)
    assert "NO ERROR" not in out and "unexpected" not in out, out
    assert "xs would need more than" in out
    assert out.strip().endswith("done")


# -------------------------------------------------- validation once, in C

def test_sequence_loss_validates_in_c_with_the_argument_named():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((2, 5, 3)).astype(np.float32)
    ys = rng.standard_normal((2, 5, 3)).astype(np.float32)
    rs = rng.random((2, 5)).astype(np.float32)
    for name, index in (("pred", 0), ("ys", 1), ("rs", 2)):
        for bad in (np.nan, np.inf, -np.inf):
            args = [pred.copy(), ys.copy(), rs.copy()]
            args[index].flat[7] = bad
            with pytest.raises(ValueError, match=rf"{name} holds a non-finite value .* at flat "
                                                 r"index 7"):
                _core.sequence_loss(*args)


def test_nonfinite_test_survives_fast_math():
    """The finiteness test reads the exponent bits: compiled with -ffast-math
    (where x != x and isfinite may be folded to constants) it still finds NaN
    and infinity."""
    import shutil
    import tempfile
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = textwrap.dedent("""
        #include "kernels.h"
        #include <math.h>
        #include <stdio.h>
        int main(void) {
            float x[6] = {1.0f, 2.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            volatile float zero = 0.0f;
            x[3] = zero / zero;
            x[5] = 1.0f / zero;
            printf("%td %td %td\\n", ica_find_nonfinite(x, 6), ica_find_nonfinite(x + 4, 2),
                   ica_find_nonfinite(x, 3));
            return 0;
        }
    """)
    import os
    csrc = os.path.join(ROOT_TESTS, "..", "csrc")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "t.c"), "w") as f:
            f.write(src)
        exe = os.path.join(tmp, "t")
        build = subprocess.run([cc, "-std=c11", "-O3", "-ffast-math", f"-I{csrc}",
                                os.path.join(tmp, "t.c"),
                                *(os.path.join(csrc, f) for f in ("common.c", "simd_scalar.c",
                                                                  "simd_avx2.c", "simd_avx512.c")),
                                "-lm", "-o", exe],
                               capture_output=True, text=True)
        if build.returncode != 0:
            pytest.skip("cannot build the probe: " + build.stderr[-500:])
        out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["3", "1", "-1"]


# ----------------------------------------------------- extreme loss scores

EXTREMES = [1e30, -1e30, 3e38, -3e38, 1e-40, -1e-40, 1e-45, 0.0]


@pytest.mark.parametrize("objective", ["pl", "bt"])
@pytest.mark.parametrize("reward", ["cosine", "neg_sq"])
@pytest.mark.parametrize("value", EXTREMES)
@pytest.mark.parametrize("where", ["pred-all", "pred-one", "ys-one"])
def test_losses_with_extreme_scores_are_finite_or_raise(objective, reward, value, where):
    """Scores from huge (±1e30, near FLT_MAX) and subnormal predictions or
    responses: a finite loss and gradient, or FloatingPointError with a clear
    message; never a silent NaN or inf."""
    rng = np.random.default_rng(1)
    pred = rng.standard_normal((3, 6, 4)).astype(np.float32)
    ys = rng.standard_normal((3, 6, 4)).astype(np.float32)
    rs = rng.random((3, 6)).astype(np.float32)
    if where == "pred-all":
        pred[:] = value
    elif where == "pred-one":
        pred[1, 3, 2] = value
    else:
        ys[2, 1, 0] = value
    loss_fn = ica.pl_loss if objective == "pl" else ica.bt_loss
    try:
        loss, dpred = loss_fn(pred, ys, rs, reward=reward)
    except FloatingPointError as e:
        assert "not finite in float32" in str(e) and "too large" in str(e), str(e)
        assert abs(value) > 1e37, "only responses near FLT_MAX may overflow"
        return
    assert np.isfinite(loss), loss
    assert np.isfinite(dpred).all()


def test_loss_overflowing_float32_raises():
    """neg_sq scores of responses near FLT_MAX: the double loss is finite, its
    float32 value is not, which must be an error."""
    rng = np.random.default_rng(2)
    pred = rng.standard_normal((1, 4, 2)).astype(np.float32)
    ys = rng.standard_normal((1, 4, 2)).astype(np.float32)
    ys[0, 0, 0] = 3e38
    rs = np.array([[0.9, 0.1, 0.5, 0.2]], np.float32)  # the far response ranked first
    with pytest.raises(FloatingPointError, match="not finite in float32"):
        ica.pl_loss(pred, ys, rs, reward="neg_sq")


# ------------------------------------------- argument names and seeds

def _tiny_model():
    return _core.Model(3, 6, 8, 1, 2, True, True, True, False, 0)


X3 = np.zeros((1, 3, 3), np.float32)
R3 = np.zeros((1, 3), np.float32)

NAMED_ARGUMENT_ERRORS = [
    ("step objective", lambda: _tiny_model().step(X3, X3, R3, lr=1e-3, objective=None),
     TypeError, r"^objective must be a str, got NoneType"),
    ("loss reward_weight", lambda: _tiny_model().loss_and_grad(X3, X3, R3, reward_weight=None),
     TypeError, r"^reward_weight must be a real number, got NoneType"),
    ("sequence_loss reward bytes", lambda: _core.sequence_loss(X3, X3, R3, reward=b"x"),
     TypeError, r"^reward must be a str, got bytes"),
    ("step lr str", lambda: _tiny_model().step(X3, X3, R3, "fast"), TypeError,
     r"^lr must be a real number, got str"),
    ("adam_update eps", lambda: _tiny_model().adam_update(1e-3, eps="x"), TypeError,
     r"^eps must be a real number"),
    ("sample_tasks float size", lambda: _core.sample_tasks(1.5, 2, 3, 0), TypeError,
     r"^batch_size must be an integer, got float"),
    ("sample_tasks huge size", lambda: _core.sample_tasks(2**40, 2, 3, 0), ValueError,
     r"^batch_size is out of range"),
    ("gd steps", lambda: _core.gd_baseline(X3, X3, R3, [1], steps=2.5), TypeError,
     r"^steps must be an integer"),
    ("simple kind", lambda: _core.simple_baseline(X3, R3, [1], None), TypeError,
     r"^kind must be a str"),
    ("model n_embd", lambda: _core.Model(3, 6, "8", 1, 2, True, True, True, False, 0),
     TypeError, r"^n_embd must be an integer, got str"),
    # negative seeds used to wrap modulo 2**64
    ("gd seed", lambda: _core.gd_baseline(X3, X3, R3, [1], seed=-1), ValueError,
     r"^seed must be an integer in \[0, 2\*\*64\), got -1"),
    ("sample seed", lambda: _core.sample_tasks(1, 2, 3, -1), ValueError, r"^seed must be"),
    ("sample offset", lambda: _core.sample_tasks(1, 2, 3, 0, offset=-2), ValueError,
     r"^offset must be"),
    ("model seed", lambda: _core.Model(3, 6, 8, 1, 2, True, True, True, False, -1), ValueError,
     r"^seed must be"),
    # the message of a bad lr carries its value (it once printed a literal "%g")
    ("negative lr", lambda: _tiny_model().step(X3, X3, R3, -1.0), ValueError,
     r"^lr must be a finite number >= 0, got -1$"),
    ("huge lr", lambda: _tiny_model().step(X3, X3, R3, 1e300), ValueError,
     r"^lr must be a finite number >= 0, got inf$"),
]


@pytest.mark.parametrize("what,call,exc,pattern", NAMED_ARGUMENT_ERRORS,
                         ids=[c[0] for c in NAMED_ARGUMENT_ERRORS])
def test_core_errors_name_the_argument(what, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ------------------------------------------------ divergence and values

def test_diverging_adam_update_raises_and_leaves_the_model_unchanged():
    """An update that would make a parameter or moment non-finite is refused
    before anything is written: FloatingPointError naming the tensor, and the
    parameters, moments and step count stay as they were."""
    cfg = ica.ModelConfig(n_dims=2, n_points=5, n_embd=6, n_layer=2, n_head=3, reward_head=True)
    m = ica.Transformer(cfg, seed=0)
    core = m._core
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 2)).astype(np.float32)
    y = rng.standard_normal((1, 3, 2)).astype(np.float32)
    r = rng.random((1, 3)).astype(np.float32)
    before = [a.copy() for a in (core.params, core.adam_m, core.adam_v)]
    with pytest.raises(FloatingPointError, match=r"would make .* non-finite .* left as they were"):
        core.step(x, y, r, lr=1e30, reward_weight=265365688.0)
    for now, then in zip((core.params, core.adam_m, core.adam_v), before):
        assert np.array_equal(now, then)
    assert core.adam_steps == 0
    core.step(x, y, r, lr=1e-3)  # the model is still usable
    assert np.isfinite(core.params).all() and core.adam_steps == 1


# the simple baselines take no queries, so only GD is given a bad xs
@pytest.mark.parametrize("array,baseline", [("xs", "gd"), ("ys", "gd"), ("rs", "gd"),
                                            ("ys", "mean"), ("rs", "mean"),
                                            ("ys", "oracle"), ("rs", "oracle")])
def test_baselines_refuse_nonfinite_inputs(array, baseline):
    xs, ys, rs, *_ = _core.sample_tasks(2, 5, 3, 0)
    arrays = {"xs": xs, "ys": ys, "rs": rs}
    arrays[array] = arrays[array].copy()
    arrays[array].flat[4] = np.nan
    if baseline == "gd":
        call = lambda: _core.gd_baseline(arrays["xs"], arrays["ys"], arrays["rs"], [2, 5], 3)
    else:
        call = lambda: _core.simple_baseline(arrays["ys"], arrays["rs"], [2, 5], baseline)
    with pytest.raises(ValueError, match=rf"^{array} holds a non-finite value \(nan\) at flat "
                                         r"index 4"):
        call()
