/*
 * icalign._core: the CPython binding of the C core, and the only file that
 * knows about Python.
 *
 * Arrays: any array-like of a real numeric dtype (bool, integer, float) is
 * accepted and converted once to C-contiguous float32; an input that already
 * is one is used in place, without a copy. Complex, object and string data are
 * refused with TypeError. Shapes are checked here, before any C code runs;
 * values, sizes and options are validated by the C core, and every C error
 * code becomes a Python exception carrying the C message (which names the
 * argument). The GIL is released around all numeric work.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <limits.h>
#include <string.h>

#include "icalign.h"

/* ------------------------------------------------------------- errors */

/* The exception of each status: a bad size, option or value is the caller's
 * ValueError; a buffer that cannot be had is a MemoryError; a computation
 * that left the floats (divergence) is a FloatingPointError. */
static PyObject *raise_status(ica_status status) {
    PyObject *type;
    switch (status) {
    case ICA_ERR_ARGUMENT: type = PyExc_ValueError; break;
    case ICA_ERR_NONFINITE: type = PyExc_ValueError; break;
    case ICA_ERR_NOMEM: type = PyExc_MemoryError; break;
    case ICA_ERR_NUMERIC: type = PyExc_FloatingPointError; break;
    default: type = PyExc_RuntimeError; break; /* ICA_OK is never raised */
    }
    PyErr_SetString(type, ica_last_error());
    return NULL;
}

static void format_shape(PyArrayObject *a, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < PyArray_NDIM(a) && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %zd" : "%zd",
                                 (Py_ssize_t)PyArray_DIM(a, i));
    if (used < size) snprintf(buf + used, size - used, PyArray_NDIM(a) == 1 ? ",)" : ")");
}

/* --------------------------------------------------------- conversions */

/* New reference to a C-contiguous float32 array with ndim in [min_nd, max_nd];
 * NULL with TypeError/ValueError naming `name` otherwise. */
static PyArrayObject *as_float32(PyObject *obj, const char *name, int min_nd, int max_nd,
                                 const char *expected) {
    PyArrayObject *any = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!any) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be an array of real numbers, got %.80s", name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    char kind = PyArray_DESCR(any)->kind;
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        PyObject *dtype_repr = PyObject_Str((PyObject *)PyArray_DESCR(any));
        PyErr_Format(PyExc_TypeError,
                     "%s has dtype %S, which does not convert safely to float32; expected a "
                     "real numeric dtype (float, int or bool)",
                     name, dtype_repr ? dtype_repr : Py_None);
        Py_XDECREF(dtype_repr);
        Py_DECREF(any);
        return NULL;
    }
    int nd = PyArray_NDIM(any);
    if (nd < min_nd || nd > max_nd) {
        char shape[128];
        format_shape(any, shape, sizeof shape);
        PyErr_Format(PyExc_ValueError, "%s must have shape %s, got shape %s (%d dimensions)", name,
                     expected, shape, nd);
        Py_DECREF(any);
        return NULL;
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_FROM_OTF(
        (PyObject *)any, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    Py_DECREF(any);
    return out;
}

static int dim_mismatch(PyArrayObject *a, const char *name, const char *expected, int axis,
                        npy_intp want) {
    if (PyArray_DIM(a, axis) == want) return 0;
    char shape[128];
    format_shape(a, shape, sizeof shape);
    PyErr_Format(PyExc_ValueError, "%s must have shape %s, got %s (axis %d is %zd, expected %zd)",
                 name, expected, shape, axis, (Py_ssize_t)PyArray_DIM(a, axis), (Py_ssize_t)want);
    return 1;
}

static int int_in_range(npy_intp value, const char *what) {
    if (value > 0 && value <= 0x7fffffff) return 1;
    PyErr_Format(PyExc_ValueError, "%s = %zd is out of range; expected 1..2^31-1", what,
                 (Py_ssize_t)value);
    return 0;
}

/* xs, ys (B,N,d) and rs (B,N) or (B,N,1): the batch of every model call. */
typedef struct {
    PyArrayObject *xs, *ys, *rs;
    int B, N, d;
} batch_arrays;

static void batch_release(batch_arrays *b) {
    Py_XDECREF(b->xs);
    Py_XDECREF(b->ys);
    Py_XDECREF(b->rs);
}

/* xs_name: what the caller calls its first array (pred for the losses), so that
 * a mismatch of ys or rs names the argument it must match. */
static int batch_convert(PyObject *xs, const char *xs_name, PyObject *ys, PyObject *rs, int d,
                         batch_arrays *b) {
    memset(b, 0, sizeof *b);
    char expected[64];
    snprintf(expected, sizeof expected, "(B, N, d=%d)", d);
    if (!(b->xs = as_float32(xs, xs_name, 3, 3, expected))) goto fail;
    if (!(b->ys = as_float32(ys, "ys", 3, 3, expected))) goto fail;
    if (!(b->rs = as_float32(rs, "rs", 2, 3, "(B, N) or (B, N, 1)"))) goto fail;
    npy_intp B = PyArray_DIM(b->xs, 0), N = PyArray_DIM(b->xs, 1);
    if (dim_mismatch(b->xs, xs_name, expected, 2, d)) goto fail;
    char batch_shape[96];
    snprintf(batch_shape, sizeof batch_shape, "(B=%zd, N=%zd, d=%d) like %s", (Py_ssize_t)B,
             (Py_ssize_t)N, d, xs_name);
    if (dim_mismatch(b->ys, "ys", batch_shape, 0, B) ||
        dim_mismatch(b->ys, "ys", batch_shape, 1, N) ||
        dim_mismatch(b->ys, "ys", batch_shape, 2, d))
        goto fail;
    snprintf(batch_shape, sizeof batch_shape, "(B=%zd, N=%zd) or (B, N, 1) like %s", (Py_ssize_t)B,
             (Py_ssize_t)N, xs_name);
    if (dim_mismatch(b->rs, "rs", batch_shape, 0, B) ||
        dim_mismatch(b->rs, "rs", batch_shape, 1, N))
        goto fail;
    if (PyArray_NDIM(b->rs) == 3 && dim_mismatch(b->rs, "rs", batch_shape, 2, 1)) goto fail;
    if (!int_in_range(B, "batch size B") || !int_in_range(N, "number of examples N")) goto fail;
    b->B = (int)B;
    b->N = (int)N;
    b->d = d;
    return 1;
fail:
    batch_release(b);
    return 0;
}

/* Converters for PyArg's "O&": each output carries its argument's name, so
 * that a wrong type or value is reported as "lr must be a real number, got
 * NoneType" rather than by position, and a negative seed is refused instead
 * of wrapping modulo 2**64. */
typedef struct {
    const char *name;
    const char *value;
} str_arg;
typedef struct {
    const char *name;
    double value;
} double_arg;
typedef struct {
    const char *name;
    int value;
} int_arg;
typedef struct {
    const char *name;
    unsigned long long value;
} u64_arg;

static int to_str(PyObject *obj, void *out) {
    str_arg *a = out;
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str, got %.80s", a->name,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    return (a->value = PyUnicode_AsUTF8(obj)) != NULL;
}

static int to_double(PyObject *obj, void *out) {
    double_arg *a = out;
    double value = PyFloat_AsDouble(obj);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %.80s", a->name,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    a->value = value;
    return 1;
}

/* obj as a Python int (anything with __index__), new reference; TypeError
 * naming the argument otherwise. */
static PyObject *as_index(PyObject *obj, const char *name) {
    PyObject *index = PyNumber_Index(obj);
    if (!index) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be an integer, got %.80s", name,
                     Py_TYPE(obj)->tp_name);
    }
    return index;
}

static int to_int(PyObject *obj, void *out) {
    int_arg *a = out;
    PyObject *index = as_index(obj, a->name);
    if (!index) return 0;
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(index, &overflow);
    Py_DECREF(index);
    if (overflow || value < INT_MIN || value > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "%s is out of range; expected an integer in [%d, %d]",
                     a->name, INT_MIN, INT_MAX);
        return 0;
    }
    a->value = (int)value;
    return 1;
}

static int to_u64(PyObject *obj, void *out) {
    u64_arg *a = out;
    PyObject *index = as_index(obj, a->name);
    if (!index) return 0;
    int negative = PyObject_RichCompareBool(index, Py_False, Py_LT); /* index < 0 */
    unsigned long long value = negative ? 0 : PyLong_AsUnsignedLongLong(index);
    Py_DECREF(index);
    if (negative || (value == (unsigned long long)-1 && PyErr_Occurred())) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be an integer in [0, 2**64), got %S", a->name, obj);
        return 0;
    }
    a->value = value;
    return 1;
}

static int parse_objective(const char *s, ica_objective *out) {
    if (strcmp(s, "pl") == 0)
        *out = ICA_OBJECTIVE_PL;
    else if (strcmp(s, "bt") == 0)
        *out = ICA_OBJECTIVE_BT;
    else {
        PyErr_Format(PyExc_ValueError,
                     "objective must be 'pl' (Plackett-Luce) or 'bt' "
                     "(Bradley-Terry), got '%s'",
                     s);
        return 0;
    }
    return 1;
}

static int parse_reward(const char *s, ica_reward *out) {
    if (strcmp(s, "cosine") == 0)
        *out = ICA_REWARD_COSINE;
    else if (strcmp(s, "neg_sq") == 0)
        *out = ICA_REWARD_NEG_SQ;
    else {
        PyErr_Format(PyExc_ValueError, "reward must be 'cosine' or 'neg_sq', got '%s'", s);
        return 0;
    }
    return 1;
}

/* A new zeroed float32 output `name` of shape dims; ValueError naming it, before
 * anything is allocated, when its size does not fit an array. */
static PyArrayObject *new_float32(const char *name, int nd, const npy_intp *dims) {
    npy_intp bytes = (npy_intp)sizeof(float);
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && bytes > NPY_MAX_INTP / dims[i])) {
            PyErr_Format(PyExc_ValueError,
                         "%s would need more than %zd bytes (axis %d has length %zd); use "
                         "smaller sizes",
                         name, (Py_ssize_t)NPY_MAX_INTP, i, (Py_ssize_t)dims[i]);
            return NULL;
        }
        bytes *= dims[i];
    }
    return (PyArrayObject *)PyArray_ZEROS(nd, (npy_intp *)dims, NPY_FLOAT32, 0);
}

/* ---------------------------------------------------------- Model type */

/* A Model owns one ica_model from __init__ on. Model.__new__ alone leaves
 * model NULL: every entry point checks for it (model_ready) and raises. */
typedef struct {
    PyObject_HEAD
    ica_model *model;
    int busy; /* set while a call runs without the GIL */
} ModelObject;

static PyObject *Model_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)args, (void)kwds;
    ModelObject *self = (ModelObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->model = NULL;
    self->busy = 0;
    return (PyObject *)self;
}

static int model_ready(ModelObject *self) {
    if (self->model) return 1;
    PyErr_SetString(PyExc_RuntimeError,
                    "the model is not initialised: create it with Model(n_dims, ...), not "
                    "Model.__new__, or its __init__ failed");
    return 0;
}

/* Mark the model busy for a call that runs without the GIL (released with
 * self->busy = 0 once the GIL is back). */
static int model_acquire(ModelObject *self) {
    if (!model_ready(self)) return 0;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the model is in use by another thread; a model runs one call at a time");
        return 0;
    }
    self->busy = 1;
    return 1;
}

static void Model_dealloc(ModelObject *self) {
    ica_model_free(self->model);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n_dims", "n_points", "n_embd",      "n_layer", "n_head",    "softmax",
                             "ffn",    "causal",   "reward_head", "seed",    "layernorm", NULL};
    ica_config cfg = {0};
    int_arg sizes[5] = {
        {"n_dims", 0}, {"n_points", 0}, {"n_embd", 0}, {"n_layer", 0}, {"n_head", 0}};
    u64_arg seed = {"seed", 0};
    int layernorm = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&O&O&O&O&ppppO&|p", kwlist, to_int, &sizes[0],
                                     to_int, &sizes[1], to_int, &sizes[2], to_int, &sizes[3],
                                     to_int, &sizes[4], &cfg.softmax, &cfg.ffn, &cfg.causal,
                                     &cfg.reward_head, to_u64, &seed, &layernorm))
        return -1;
    cfg.ln_affine = !layernorm;
    cfg.n_dims = sizes[0].value;
    cfg.n_points = sizes[1].value;
    cfg.n_embd = sizes[2].value;
    cfg.n_layer = sizes[3].value;
    cfg.n_head = sizes[4].value;
    if (self->model) {
        PyErr_SetString(PyExc_RuntimeError, "Model.__init__ may be called only once");
        return -1;
    }
    ica_status st;
    ica_model *model = NULL;
    Py_BEGIN_ALLOW_THREADS
        st = ica_model_create(&model, &cfg, (uint64_t)seed.value);
    Py_END_ALLOW_THREADS
    if (st != ICA_OK) {
        raise_status(st);
        return -1;
    }
    self->model = model;
    return 0;
}

static PyObject *Model_tensors(ModelObject *self, PyObject *Py_UNUSED(ignored)) {
    if (!model_ready(self)) return NULL;
    int n = ica_model_num_tensors(self->model);
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (int i = 0; i < n; i++) {
        const char *name;
        int ndim, shape[2];
        size_t offset;
        if (ica_model_tensor_info(self->model, &name, &ndim, shape, &offset, i) != ICA_OK) {
            Py_DECREF(list);
            return raise_status(ICA_ERR_ARGUMENT);
        }
        PyObject *item =
            ndim == 2 ? Py_BuildValue("(s(ii)n)", name, shape[0], shape[1], (Py_ssize_t)offset)
                      : Py_BuildValue("(s(i)n)", name, shape[0], (Py_ssize_t)offset);
        if (!item) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

/* The four arena slices, in arena order; a getter's closure points at one. */
typedef float *(*arena_slice_fn)(ica_model *);
static const arena_slice_fn arena_slices[4] = {ica_model_params, ica_model_grads, ica_model_adam_m,
                                               ica_model_adam_v};

/* A writable 1-D float32 view of the arena slice named by the closure, which
 * keeps the model alive. */
static PyObject *Model_get_arena(ModelObject *self, void *closure) {
    if (!model_ready(self)) return NULL;
    float *data = (*(const arena_slice_fn *)closure)(self->model);
    npy_intp n = (npy_intp)ica_model_arena_size(self->model);
    PyObject *arr = PyArray_SimpleNewFromData(1, &n, NPY_FLOAT32, data);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *Model_get_adam_steps(ModelObject *self, void *c) {
    (void)c;
    if (!model_ready(self)) return NULL;
    return PyLong_FromLongLong(ica_model_adam_steps(self->model));
}
static int Model_set_adam_steps(ModelObject *self, PyObject *value, void *c) {
    (void)c;
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "adam_steps cannot be deleted");
        return -1;
    }
    long long steps = PyLong_AsLongLong(value);
    if (steps == -1 && PyErr_Occurred()) return -1;
    if (steps < 0) {
        PyErr_Format(PyExc_ValueError, "adam_steps must be >= 0, got %lld", steps);
        return -1;
    }
    /* not while a call (an Adam update) runs on another thread */
    if (!model_acquire(self)) return -1;
    ica_model_set_adam_steps(self->model, steps);
    self->busy = 0;
    return 0;
}

/* forward (maps = 0: (pred, rhat or None)) or attention_maps (maps = 1: the
 * (B, L, H, 3N, 3N) weights of the forward pass) */
static PyObject *run_forward(ModelObject *self, PyObject *args, PyObject *kwds, int maps) {
    static char *kwlist[] = {"xs", "ys", "rs", NULL};
    PyObject *xs, *ys, *rs;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO", kwlist, &xs, &ys, &rs)) return NULL;
    if (!model_ready(self)) return NULL;
    const ica_config *cfg = ica_model_config(self->model);
    batch_arrays b;
    if (!batch_convert(xs, "xs", ys, rs, cfg->n_dims, &b)) return NULL;
    const npy_intp T = 3 * (npy_intp)b.N;
    npy_intp dims[3] = {b.B, b.N, b.d}, map_dims[5] = {b.B, cfg->n_layer, cfg->n_head, T, T};
    PyArrayObject *out =
        maps ? new_float32("attention maps", 5, map_dims) : new_float32("pred", 3, dims);
    PyArrayObject *rhat = !maps && cfg->reward_head ? new_float32("rhat", 2, dims) : NULL;
    if (!out || (!maps && cfg->reward_head && !rhat) || !model_acquire(self)) {
        Py_XDECREF(out);
        Py_XDECREF(rhat);
        batch_release(&b);
        return NULL;
    }
    ica_status st;
    Py_BEGIN_ALLOW_THREADS
        if (maps)
            st = ica_model_attention_maps(self->model, PyArray_DATA(out), PyArray_DATA(b.xs),
                                          PyArray_DATA(b.ys), PyArray_DATA(b.rs), b.B, b.N);
        else
            st = ica_model_forward(self->model, PyArray_DATA(out), rhat ? PyArray_DATA(rhat) : NULL,
                                   PyArray_DATA(b.xs), PyArray_DATA(b.ys), PyArray_DATA(b.rs), b.B,
                                   b.N);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    batch_release(&b);
    if (st != ICA_OK) {
        Py_DECREF(out);
        Py_XDECREF(rhat);
        return raise_status(st);
    }
    if (maps) return (PyObject *)out;
    if (!rhat) return Py_BuildValue("(NO)", out, Py_None);
    return Py_BuildValue("(NN)", out, rhat);
}

static PyObject *Model_forward(ModelObject *self, PyObject *args, PyObject *kwds) {
    return run_forward(self, args, kwds, 0);
}

static PyObject *Model_attention_maps(ModelObject *self, PyObject *args, PyObject *kwds) {
    return run_forward(self, args, kwds, 1);
}

/* Shared by loss_and_grad (update = 0) and step (update = 1: forward,
 * backward, then an Adam update with learning rate lr). */
static PyObject *run_loss(ModelObject *self, PyObject *xs, PyObject *ys, PyObject *rs,
                          const char *objective_name, const char *reward_name, double reward_weight,
                          int update, double lr) {
    ica_objective objective;
    ica_reward reward;
    if (!parse_objective(objective_name, &objective) || !parse_reward(reward_name, &reward))
        return NULL;
    if (!model_ready(self)) return NULL;
    batch_arrays b;
    if (!batch_convert(xs, "xs", ys, rs, ica_model_config(self->model)->n_dims, &b)) return NULL;
    if (!model_acquire(self)) {
        batch_release(&b);
        return NULL;
    }
    float loss = 0.0f;
    ica_status st;
    Py_BEGIN_ALLOW_THREADS
        if (update)
            st = ica_model_step(self->model, &loss, PyArray_DATA(b.xs), PyArray_DATA(b.ys),
                                PyArray_DATA(b.rs), b.B, b.N, objective, reward,
                                (float)reward_weight, (float)lr);
        else
            st = ica_model_loss_and_grad(self->model, &loss, PyArray_DATA(b.xs), PyArray_DATA(b.ys),
                                         PyArray_DATA(b.rs), b.B, b.N, objective, reward,
                                         (float)reward_weight);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    batch_release(&b);
    if (st != ICA_OK) return raise_status(st);
    return PyFloat_FromDouble(loss);
}

static PyObject *Model_loss_and_grad(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"xs", "ys", "rs", "objective", "reward", "reward_weight", NULL};
    PyObject *xs, *ys, *rs;
    str_arg objective = {"objective", "pl"}, reward = {"reward", "cosine"};
    double_arg reward_weight = {"reward_weight", 1.0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O&O&O&", kwlist, &xs, &ys, &rs, to_str,
                                     &objective, to_str, &reward, to_double, &reward_weight))
        return NULL;
    return run_loss(self, xs, ys, rs, objective.value, reward.value, reward_weight.value, 0, 0.0);
}

static PyObject *Model_step(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"xs", "ys", "rs", "lr", "objective", "reward", "reward_weight", NULL};
    PyObject *xs, *ys, *rs;
    str_arg objective = {"objective", "pl"}, reward = {"reward", "cosine"};
    double_arg lr = {"lr", 0.0}, reward_weight = {"reward_weight", 1.0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO&|O&O&O&", kwlist, &xs, &ys, &rs, to_double,
                                     &lr, to_str, &objective, to_str, &reward, to_double,
                                     &reward_weight))
        return NULL;
    /* lr is validated by the C core */
    return run_loss(self, xs, ys, rs, objective.value, reward.value, reward_weight.value, 1,
                    lr.value);
}

static PyObject *Model_adam_update(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"lr", "beta1", "beta2", "eps", NULL};
    double_arg lr = {"lr", 0.0}, beta1 = {"beta1", 0.9}, beta2 = {"beta2", 0.999},
               eps = {"eps", 1e-8};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O&O&O&", kwlist, to_double, &lr, to_double,
                                     &beta1, to_double, &beta2, to_double, &eps))
        return NULL;
    if (!model_acquire(self)) return NULL;
    ica_status st;
    Py_BEGIN_ALLOW_THREADS
        st = ica_model_adam_update(self->model, (float)lr.value, (float)beta1.value,
                                   (float)beta2.value, (float)eps.value);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (st != ICA_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyMethodDef Model_methods[] = {
    {"tensors", (PyCFunction)Model_tensors, METH_NOARGS,
     "tensors() -> [(name, shape, offset)]: the parameter table in model order."},
    {"forward", (PyCFunction)(void (*)(void))Model_forward, METH_VARARGS | METH_KEYWORDS,
     "forward(xs, ys, rs) -> (pred (B,N,d), rhat (B,N) or None)."},
    {"attention_maps", (PyCFunction)(void (*)(void))Model_attention_maps,
     METH_VARARGS | METH_KEYWORDS,
     "attention_maps(xs, ys, rs) -> probs (B, n_layer, n_head, 3N, 3N) of the forward pass."},
    {"loss_and_grad", (PyCFunction)(void (*)(void))Model_loss_and_grad,
     METH_VARARGS | METH_KEYWORDS,
     "loss_and_grad(xs, ys, rs, objective='pl', reward='cosine', reward_weight=1.0) -> loss; "
     "the gradient is left in .grads."},
    {"step", (PyCFunction)(void (*)(void))Model_step, METH_VARARGS | METH_KEYWORDS,
     "step(xs, ys, rs, lr, objective='pl', reward='cosine', reward_weight=1.0) -> loss: "
     "forward, backward and one Adam update."},
    {"adam_update", (PyCFunction)(void (*)(void))Model_adam_update, METH_VARARGS | METH_KEYWORDS,
     "adam_update(lr, beta1=0.9, beta2=0.999, eps=1e-8): one Adam step from .grads."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Model_getset[] = {
    {"params", (getter)Model_get_arena, NULL, "float32 view of the parameter arena",
     (void *)&arena_slices[0]},
    {"grads", (getter)Model_get_arena, NULL, "float32 view of the gradient arena",
     (void *)&arena_slices[1]},
    {"adam_m", (getter)Model_get_arena, NULL, "float32 view of Adam's first moments",
     (void *)&arena_slices[2]},
    {"adam_v", (getter)Model_get_arena, NULL, "float32 view of Adam's second moments",
     (void *)&arena_slices[3]},
    {"adam_steps", (getter)Model_get_adam_steps, (setter)Model_set_adam_steps,
     "number of Adam updates taken (drives the bias correction)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "icalign._core.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Model(n_dims, n_points, n_embd, n_layer, n_head, softmax, ffn, causal, "
              "reward_head, seed, layernorm=True): the C model with its parameter and "
              "activation arenas.",
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
    .tp_init = (initproc)Model_init,
    .tp_new = Model_new,
};

/* ------------------------------------------------------ free functions */

/* objective and reward names to the core's enums (ValueError naming them). */
static int parse_objective_reward(const str_arg *objective_name, const str_arg *reward_name,
                                  ica_objective *objective, ica_reward *reward) {
    return parse_objective(objective_name->value, objective) &&
           parse_reward(reward_name->value, reward);
}

static PyObject *py_sequence_loss(PyObject *mod, PyObject *args, PyObject *kwds) {
    (void)mod;
    static char *kwlist[] = {"pred", "ys", "rs", "objective", "reward", NULL};
    PyObject *pred_obj, *ys, *rs;
    str_arg objective_name = {"objective", "pl"}, reward_name = {"reward", "cosine"};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O&O&", kwlist, &pred_obj, &ys, &rs, to_str,
                                     &objective_name, to_str, &reward_name))
        return NULL;
    ica_objective objective;
    ica_reward reward;
    if (!parse_objective_reward(&objective_name, &reward_name, &objective, &reward)) return NULL;
    PyArrayObject *pred = as_float32(pred_obj, "pred", 3, 3, "(B, N, d)");
    if (!pred) return NULL;
    batch_arrays b;
    int d = (int)PyArray_DIM(pred, 2);
    if (!batch_convert((PyObject *)pred, "pred", ys, rs, d, &b)) {
        Py_DECREF(pred);
        return NULL;
    }
    npy_intp dims[3] = {b.B, b.N, b.d};
    PyArrayObject *dpred = new_float32("dpred", 3, dims);
    ica_status st = ICA_OK;
    float loss = 0.0f;
    if (dpred) { /* the C core checks the values (finite) and the sizes */
        Py_BEGIN_ALLOW_THREADS
            st = ica_sequence_loss(&loss, PyArray_DATA(dpred), PyArray_DATA(b.xs),
                                   PyArray_DATA(b.ys), PyArray_DATA(b.rs), b.B, b.N, b.d, objective,
                                   reward);
        Py_END_ALLOW_THREADS
    }
    batch_release(&b);
    Py_DECREF(pred);
    if (!dpred) return NULL;
    if (st != ICA_OK) {
        Py_DECREF(dpred);
        return raise_status(st);
    }
    return Py_BuildValue("(dN)", (double)loss, dpred);
}

static PyObject *py_sample_tasks(PyObject *mod, PyObject *args, PyObject *kwds) {
    (void)mod;
    static char *kwlist[] = {"batch_size", "n_points",     "n_dims", "seed",
                             "offset",     "reward_noise", NULL};
    int_arg batch_size = {"batch_size", 0}, n_points = {"n_points", 0}, n_dims = {"n_dims", 0};
    u64_arg seed = {"seed", 0}, offset = {"offset", 0};
    double_arg noise = {"reward_noise", 0.0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&O&O&O&|O&O&", kwlist, to_int, &batch_size,
                                     to_int, &n_points, to_int, &n_dims, to_u64, &seed, to_u64,
                                     &offset, to_double, &noise))
        return NULL;
    int B = batch_size.value, N = n_points.value, d = n_dims.value;
    if (B < 1 || N < 1 || d < 1) {
        PyErr_Format(PyExc_ValueError,
                     "batch_size, n_points and n_dims must be >= 1, got %d, %d, %d", B, N, d);
        return NULL;
    }
    npy_intp d3[3] = {B, N, d}, d2[2] = {B, N}, dv[2] = {B, d};
    PyArrayObject *xs = new_float32("xs", 3, d3);
    PyArrayObject *ys = xs ? new_float32("ys", 3, d3) : NULL;
    PyArrayObject *rs = ys ? new_float32("rs", 2, d2) : NULL;
    PyArrayObject *rs_true = rs ? new_float32("rs_true", 2, d2) : NULL;
    PyArrayObject *ystar = rs_true ? new_float32("ystar", 2, dv) : NULL;
    PyArrayObject *eps = ystar ? new_float32("eps", 2, dv) : NULL;
    PyObject *result = NULL;
    if (eps) {
        ica_status st;
        Py_BEGIN_ALLOW_THREADS
            st = ica_sample_tasks(PyArray_DATA(xs), PyArray_DATA(ys), PyArray_DATA(rs),
                                  PyArray_DATA(rs_true), PyArray_DATA(ystar), PyArray_DATA(eps), B,
                                  N, d, (uint64_t)seed.value, (uint64_t)offset.value, noise.value);
        Py_END_ALLOW_THREADS
        if (st != ICA_OK)
            raise_status(st);
        else
            result = Py_BuildValue("(OOOOOO)", xs, ys, rs, rs_true, ystar, eps);
    }
    Py_XDECREF(xs);
    Py_XDECREF(ys);
    Py_XDECREF(rs);
    Py_XDECREF(rs_true);
    Py_XDECREF(ystar);
    Py_XDECREF(eps);
    return result;
}

/* t_values: a sequence of ints -> new int array (caller frees with PyMem_Free). */
static int *convert_t_values(PyObject *obj, int *count) {
    PyObject *seq = PySequence_Fast(obj, "t_values must be a sequence of integers");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int *values = PyMem_Malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!values) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError, "t_values[%zd] must be an integer", i);
            PyMem_Free(values);
            Py_DECREF(seq);
            return NULL;
        }
        values[i] = (int)(v > 0x7fffffff ? 0x7fffffff : v < -1 ? -1 : v);
    }
    Py_DECREF(seq);
    *count = (int)n;
    return values;
}

/* What both baseline calls share: the batch (shape_source gives B, N and d; it
 * is xs for GD and ys for the simple baselines, which need no queries), the
 * t values and the output (B, len(t_values), d). */
typedef struct {
    batch_arrays b;
    int *t_values, n_t;
    PyArrayObject *out;
} baseline_call;

static void baseline_release(baseline_call *c) {
    batch_release(&c->b);
    PyMem_Free(c->t_values);
    Py_XDECREF(c->out);
}

static int baseline_prepare(PyObject *shape_source, const char *source_name, PyObject *xs,
                            PyObject *ys, PyObject *rs, PyObject *t_obj, baseline_call *c) {
    memset(c, 0, sizeof *c);
    PyArrayObject *probe = as_float32(shape_source, source_name, 3, 3, "(B, N, d)");
    if (!probe) return 0;
    int d = (int)PyArray_DIM(probe, 2);
    int ok = batch_convert(xs ? xs : (PyObject *)probe, xs ? "xs" : source_name, ys, rs, d, &c->b);
    Py_DECREF(probe);
    if (!ok) return 0;
    if (!(c->t_values = convert_t_values(t_obj, &c->n_t))) goto fail;
    if (c->n_t == 0) {
        PyErr_SetString(PyExc_ValueError, "t_values is empty; expected e.g. range(2, 16)");
        goto fail;
    }
    npy_intp dims[3] = {c->b.B, c->n_t, d};
    if (!(c->out = new_float32("the output", 3, dims))) goto fail;
    return 1;
fail:
    baseline_release(c);
    return 0;
}

/* Returns the output (a new reference) or raises for st. */
static PyObject *baseline_finish(baseline_call *c, ica_status st) {
    PyObject *result = NULL;
    if (st != ICA_OK) {
        raise_status(st);
    } else {
        result = (PyObject *)c->out;
        c->out = NULL;
    }
    baseline_release(c);
    return result;
}

static PyObject *py_gd_baseline(PyObject *mod, PyObject *args, PyObject *kwds) {
    (void)mod;
    static char *kwlist[] = {"xs", "ys",   "rs",        "t_values", "steps",
                             "lr", "seed", "objective", "reward",   NULL};
    PyObject *xs, *ys, *rs, *t_obj;
    int_arg steps = {"steps", 50};
    double_arg lr = {"lr", 0.1};
    u64_arg seed = {"seed", 0};
    str_arg objective_name = {"objective", "pl"}, reward_name = {"reward", "cosine"};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|O&O&O&O&O&", kwlist, &xs, &ys, &rs, &t_obj,
                                     to_int, &steps, to_double, &lr, to_u64, &seed, to_str,
                                     &objective_name, to_str, &reward_name))
        return NULL;
    ica_objective objective;
    ica_reward reward;
    if (!parse_objective_reward(&objective_name, &reward_name, &objective, &reward)) return NULL;
    baseline_call c;
    if (!baseline_prepare(xs, "xs", xs, ys, rs, t_obj, &c)) return NULL;
    ica_status st;
    Py_BEGIN_ALLOW_THREADS
        st = ica_gd_baseline(PyArray_DATA(c.out), PyArray_DATA(c.b.xs), PyArray_DATA(c.b.ys),
                             PyArray_DATA(c.b.rs), c.t_values, c.b.B, c.b.N, c.b.d, c.n_t,
                             steps.value, (float)lr.value, (uint64_t)seed.value, objective, reward);
    Py_END_ALLOW_THREADS
    return baseline_finish(&c, st);
}

static PyObject *py_surrogate_optimum(PyObject *mod, PyObject *args, PyObject *kwds) {
    (void)mod;
    static char *kwlist[] = {"ys",        "rs", "t_values", "objective", "reward",
                             "max_steps", "lr", "tol",      NULL};
    PyObject *ys, *rs, *t_obj;
    str_arg objective_name = {"objective", "pl"}, reward_name = {"reward", "cosine"};
    int_arg max_steps = {"max_steps", 2000};
    double_arg lr = {"lr", 0.02}, tol = {"tol", 1e-6};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O&O&O&O&O&", kwlist, &ys, &rs, &t_obj, to_str,
                                     &objective_name, to_str, &reward_name, to_int, &max_steps,
                                     to_double, &lr, to_double, &tol))
        return NULL;
    ica_objective objective;
    ica_reward reward;
    if (!parse_objective_reward(&objective_name, &reward_name, &objective, &reward)) return NULL;
    baseline_call c;
    if (!baseline_prepare(ys, "ys", NULL, ys, rs, t_obj, &c)) return NULL;
    npy_intp dims[2] = {c.b.B, c.n_t};
    PyArrayObject *grad_norm = new_float32("grad_norm", 2, dims);
    PyArrayObject *steps = grad_norm ? (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT32, 0) : NULL;
    if (!steps) {
        Py_XDECREF(grad_norm);
        baseline_release(&c);
        return NULL;
    }
    ica_status st;
    Py_BEGIN_ALLOW_THREADS
        st = ica_surrogate_optimum(PyArray_DATA(c.out), PyArray_DATA(grad_norm),
                                   PyArray_DATA(steps), PyArray_DATA(c.b.ys), PyArray_DATA(c.b.rs),
                                   c.t_values, c.b.B, c.b.N, c.b.d, c.n_t, objective, reward,
                                   max_steps.value, (float)lr.value, (float)tol.value);
    Py_END_ALLOW_THREADS
    PyObject *out = baseline_finish(&c, st);
    PyObject *result = out ? PyTuple_Pack(3, out, grad_norm, steps) : NULL;
    Py_XDECREF(out);
    Py_DECREF(grad_norm);
    Py_DECREF(steps);
    return result;
}

static PyObject *py_simple_baseline(PyObject *mod, PyObject *args, PyObject *kwds) {
    (void)mod;
    static char *kwlist[] = {"ys", "rs", "t_values", "kind", "temperature", NULL};
    PyObject *ys, *rs, *t_obj;
    str_arg kind_arg = {"kind", NULL};
    double_arg temperature = {"temperature", 1.0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO&|O&", kwlist, &ys, &rs, &t_obj, to_str,
                                     &kind_arg, to_double, &temperature))
        return NULL;
    const char *kind_name = kind_arg.value;
    static const char *kinds[] = {"mean", "best", "weighted", "oracle"};
    int kind = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(kind_name, kinds[i]) == 0) kind = i;
    if (kind < 0) {
        PyErr_Format(PyExc_ValueError,
                     "kind must be 'mean', 'best', 'weighted' or 'oracle', got '%s'", kind_name);
        return NULL;
    }
    baseline_call c;
    if (!baseline_prepare(ys, "ys", NULL, ys, rs, t_obj, &c)) return NULL;
    ica_status st;
    Py_BEGIN_ALLOW_THREADS
        st = ica_simple_baseline(PyArray_DATA(c.out), PyArray_DATA(c.b.ys), PyArray_DATA(c.b.rs),
                                 c.t_values, c.b.B, c.b.N, c.b.d, c.n_t, (ica_baseline)kind,
                                 (float)temperature.value);
    Py_END_ALLOW_THREADS
    return baseline_finish(&c, st);
}

static PyObject *py_set_num_threads(PyObject *mod, PyObject *arg) {
    (void)mod;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 1 || n > 4096) {
        PyErr_Format(PyExc_ValueError, "number of threads must be in [1, 4096], got %ld", n);
        return NULL;
    }
    ica_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *mod, PyObject *Py_UNUSED(ignored)) {
    (void)mod;
    return PyLong_FromLong(ica_get_num_threads());
}

static PyObject *py_has_openmp(PyObject *mod, PyObject *Py_UNUSED(ignored)) {
    (void)mod;
    return PyBool_FromLong(ica_has_openmp());
}

static PyObject *py_simd_path(PyObject *mod, PyObject *Py_UNUSED(ignored)) {
    (void)mod;
    return PyUnicode_FromString(ica_simd_path());
}

static PyObject *py_set_simd_path(PyObject *mod, PyObject *arg) {
    (void)mod;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    ica_status st = ica_set_simd_path(name);
    if (st != ICA_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"sequence_loss", (PyCFunction)(void (*)(void))py_sequence_loss, METH_VARARGS | METH_KEYWORDS,
     "sequence_loss(pred, ys, rs, objective='pl', reward='cosine') -> (loss, dpred)"},
    {"sample_tasks", (PyCFunction)(void (*)(void))py_sample_tasks, METH_VARARGS | METH_KEYWORDS,
     "sample_tasks(batch_size, n_points, n_dims, seed, offset=0, reward_noise=0.0) -> "
     "(xs, ys, rs, rs_true, ystar, eps)"},
    {"gd_baseline", (PyCFunction)(void (*)(void))py_gd_baseline, METH_VARARGS | METH_KEYWORDS,
     "gd_baseline(xs, ys, rs, t_values, steps=50, lr=0.1, seed=0, objective='pl', "
     "reward='cosine') -> (B, len(t_values), d)"},
    {"surrogate_optimum", (PyCFunction)(void (*)(void))py_surrogate_optimum,
     METH_VARARGS | METH_KEYWORDS,
     "surrogate_optimum(ys, rs, t_values, objective='pl', reward='cosine', max_steps=2000, "
     "lr=0.02, tol=1e-6) -> (pred (B, len(t), d), grad_norm (B, len(t)), steps (B, len(t)))"},
    {"simple_baseline", (PyCFunction)(void (*)(void))py_simple_baseline,
     METH_VARARGS | METH_KEYWORDS,
     "simple_baseline(ys, rs, t_values, kind, temperature=1.0) -> (B, len(t_values), d)"},
    {"set_num_threads", py_set_num_threads, METH_O, "set_num_threads(n)"},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "get_num_threads() -> int"},
    {"has_openmp", py_has_openmp, METH_NOARGS, "has_openmp() -> bool"},
    {"simd_path", py_simd_path, METH_NOARGS, "simd_path() -> 'avx512' | 'avx2' | 'scalar'"},
    {"set_simd_path", py_set_simd_path, METH_O, "set_simd_path(name)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    "icalign._core",
    "C core of icalign: model, losses, Adam, task sampler and baselines.",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL};

PyMODINIT_FUNC PyInit__core(void) {
    import_array();
    if (PyType_Ready(&ModelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m) return NULL;
    Py_INCREF(&ModelType);
    if (PyModule_AddObject(m, "Model", (PyObject *)&ModelType) < 0) {
        Py_DECREF(&ModelType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
