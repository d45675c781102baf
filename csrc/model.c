/*
 * The GPT-2 (pre-LN) model of SPEC section 2 over (x, y, r) triplets.
 *
 * Memory, as in llm.c's train_gpt2.c, lives in two arenas:
 *  - the parameter arena: params | grads | adam m | adam v, four slices of the
 *    same layout, so a tensor's offset names it in all four;
 *  - the activation arena, sized for the largest batch seen and reused.
 * Training keeps, per layer, only what the backward pass cannot cheaply
 * rebuild: the residual stream entering each sub-block, LayerNorm statistics,
 * qkv, the attention output and the MLP pre-activation. LayerNorm outputs,
 * GELU outputs and attention probabilities are recomputed (the last per
 * (batch, head) inside attention_backward), and the activation gradients
 * exist for one layer at a time. Inference (predict) gives every layer the
 * same slot, so it needs one layer's worth of memory. A kernel scratch slice
 * holds packed weights and the per-thread attention blocks.
 */
#include "kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 48
#define ALIGN_FLOATS 16 /* 64 bytes */

typedef enum { INIT_ZERO, INIT_ONE, INIT_NORMAL, INIT_NORMAL_PROJ, INIT_UNIFORM_FAN_IN } init_kind;

typedef struct {
    char name[MAX_NAME];
    int ndim, shape[2];
    size_t offset, numel;
    init_kind init;
    int fan_in;
} tensor_entry;

typedef struct { /* offsets of one block's tensors in each arena slice */
    size_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b;
    size_t ln2_w, ln2_b, fc_w, fc_b, fcproj_w, fcproj_b;
} layer_offsets;

struct ica_model {
    ica_config cfg;
    int n_tensors;
    tensor_entry *tensors;
    layer_offsets *layers;
    size_t read_in_w, read_in_b, wpe, lnf_w, lnf_b, read_out_w, read_out_b, reward_w, reward_b;
    size_t slice; /* floats per arena slice */
    float *arena; /* params | grads | m | v */
    int64_t adam_steps;
    float *acts;
    size_t acts_capacity; /* floats */
    void *ws;             /* workspace table of the activation arena */
    int ws_capacity;
};

/* ---------------------------------------------------------------- config */

ica_status ica_config_check(const ica_config *c) {
    if (c->n_dims < 1) return ica_fail(ICA_ERR_ARGUMENT, "n_dims must be >= 1, got %d", c->n_dims);
    if (c->n_points < 1)
        return ica_fail(ICA_ERR_ARGUMENT, "n_points must be >= 1, got %d", c->n_points);
    if (c->n_embd < 1) return ica_fail(ICA_ERR_ARGUMENT, "n_embd must be >= 1, got %d", c->n_embd);
    if (c->n_layer < 1)
        return ica_fail(ICA_ERR_ARGUMENT, "n_layer must be >= 1, got %d", c->n_layer);
    if (c->n_head < 1) return ica_fail(ICA_ERR_ARGUMENT, "n_head must be >= 1, got %d", c->n_head);
    if (c->n_embd % c->n_head != 0)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "n_embd (%d) must be divisible by n_head (%d) to give equal head sizes",
                        c->n_embd, c->n_head);
    if (c->n_points > 100000 || c->n_embd > 65536 || c->n_layer > 10000 || c->n_dims > 65536)
        return ica_fail(ICA_ERR_ARGUMENT, "model sizes are unreasonably large (n_points=%d, "
                                          "n_embd=%d, n_layer=%d, n_dims=%d)",
                        c->n_points, c->n_embd, c->n_layer, c->n_dims);
    return ICA_OK;
}

/* -------------------------------------------------------- parameter table */

static size_t round_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

/* Appends a tensor to the table (when table is not NULL) and returns its offset. */
static size_t add_tensor(tensor_entry *table, int *count, size_t *cursor, const char *name,
                         int ndim, int d0, int d1, init_kind init, int fan_in) {
    size_t offset = *cursor, numel = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    if (table) {
        tensor_entry *t = &table[*count];
        snprintf(t->name, MAX_NAME, "%s", name);
        t->ndim = ndim;
        t->shape[0] = d0;
        t->shape[1] = ndim == 2 ? d1 : 0;
        t->offset = offset;
        t->numel = numel;
        t->init = init;
        t->fan_in = fan_in;
    }
    (*count)++;
    *cursor = round_up(offset + numel);
    return offset;
}

/* The SPEC section 2 parameter list, in its order. Called once with
 * table == NULL to count the tensors, then to fill the table and offsets. */
static void build_layout(ica_model *m, tensor_entry *table) {
    const ica_config *c = &m->cfg;
    int d = c->n_dims, E = c->n_embd, count = 0;
    size_t cursor = 0;
    char name[MAX_NAME];
    m->read_in_w = add_tensor(table, &count, &cursor, "read_in.weight", 2, d, E, INIT_UNIFORM_FAN_IN, d);
    m->read_in_b = add_tensor(table, &count, &cursor, "read_in.bias", 1, E, 0, INIT_UNIFORM_FAN_IN, d);
    m->wpe = add_tensor(table, &count, &cursor, "wpe", 2, 3 * c->n_points, E, INIT_NORMAL, 0);
    for (int l = 0; l < c->n_layer; l++) {
        layer_offsets lo = {0};
#define ADD(field, suffix, ndim, d0, d1, init)                                                   \
    snprintf(name, sizeof name, "h.%d.%s", l, suffix);                                             \
    lo.field = add_tensor(table, &count, &cursor, name, ndim, d0, d1, init, 0)
        ADD(ln1_w, "ln_1.weight", 1, E, 0, INIT_ONE);
        ADD(ln1_b, "ln_1.bias", 1, E, 0, INIT_ZERO);
        ADD(qkv_w, "attn.c_attn.weight", 2, E, 3 * E, INIT_NORMAL);
        ADD(qkv_b, "attn.c_attn.bias", 1, 3 * E, 0, INIT_ZERO);
        ADD(proj_w, "attn.c_proj.weight", 2, E, E, INIT_NORMAL_PROJ);
        ADD(proj_b, "attn.c_proj.bias", 1, E, 0, INIT_ZERO);
        if (c->ffn) {
            ADD(ln2_w, "ln_2.weight", 1, E, 0, INIT_ONE);
            ADD(ln2_b, "ln_2.bias", 1, E, 0, INIT_ZERO);
            ADD(fc_w, "mlp.c_fc.weight", 2, E, 4 * E, INIT_NORMAL);
            ADD(fc_b, "mlp.c_fc.bias", 1, 4 * E, 0, INIT_ZERO);
            ADD(fcproj_w, "mlp.c_proj.weight", 2, 4 * E, E, INIT_NORMAL_PROJ);
            ADD(fcproj_b, "mlp.c_proj.bias", 1, E, 0, INIT_ZERO);
        }
#undef ADD
        if (table) m->layers[l] = lo;
    }
    m->lnf_w = add_tensor(table, &count, &cursor, "ln_f.weight", 1, E, 0, INIT_ONE, 0);
    m->lnf_b = add_tensor(table, &count, &cursor, "ln_f.bias", 1, E, 0, INIT_ZERO, 0);
    m->read_out_w = add_tensor(table, &count, &cursor, "read_out.weight", 2, E, d, INIT_UNIFORM_FAN_IN, E);
    m->read_out_b = add_tensor(table, &count, &cursor, "read_out.bias", 1, d, 0, INIT_UNIFORM_FAN_IN, E);
    if (c->reward_head) {
        m->reward_w = add_tensor(table, &count, &cursor, "read_reward.weight", 2, E, 1, INIT_UNIFORM_FAN_IN, E);
        m->reward_b = add_tensor(table, &count, &cursor, "read_reward.bias", 1, 1, 0, INIT_UNIFORM_FAN_IN, E);
    }
    m->n_tensors = count;
    m->slice = cursor;
}

static void init_params(ica_model *m, uint64_t seed) {
    float *params = m->arena;
    double proj_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
    for (int i = 0; i < m->n_tensors; i++) {
        const tensor_entry *t = &m->tensors[i];
        float *p = params + t->offset;
        rng_stream rng;
        rng_init(&rng, seed, RNG_DOMAIN_INIT, (uint64_t)i);
        double bound = t->fan_in > 0 ? 1.0 / sqrt((double)t->fan_in) : 0.0;
        for (size_t j = 0; j < t->numel; j++) {
            switch (t->init) {
            case INIT_ZERO: p[j] = 0.0f; break;
            case INIT_ONE: p[j] = 1.0f; break;
            case INIT_NORMAL: p[j] = (float)(0.02 * rng_normal(&rng)); break;
            case INIT_NORMAL_PROJ: p[j] = (float)(proj_std * rng_normal(&rng)); break;
            case INIT_UNIFORM_FAN_IN:
                p[j] = (float)(bound * (2.0 * rng_uniform(&rng) - 1.0));
                break;
            }
        }
    }
}

ica_status ica_model_create(const ica_config *cfg, uint64_t seed, ica_model **out) {
    *out = NULL;
    ica_status st = ica_config_check(cfg);
    if (st != ICA_OK) return st;
    ica_model *m = calloc(1, sizeof *m);
    if (!m) return ica_fail(ICA_ERR_NOMEM, "out of memory for the model");
    m->cfg = *cfg;
    build_layout(m, NULL);
    m->tensors = calloc((size_t)m->n_tensors, sizeof *m->tensors);
    m->layers = calloc((size_t)cfg->n_layer, sizeof *m->layers);
    if (m->tensors && m->layers) {
        build_layout(m, m->tensors);
        m->arena = ica_calloc_aligned(4 * m->slice * sizeof(float));
    }
    if (!m->arena) {
        ica_model_free(m);
        return ica_fail(ICA_ERR_NOMEM, "out of memory for the parameter arena");
    }
    init_params(m, seed);
    *out = m;
    return ICA_OK;
}

void ica_model_free(ica_model *m) {
    if (!m) return;
    free(m->tensors);
    free(m->layers);
    ica_free_aligned(m->arena);
    ica_free_aligned(m->acts);
    free(m->ws);
    free(m);
}

const ica_config *ica_model_config(const ica_model *m) { return &m->cfg; }
int ica_model_num_tensors(const ica_model *m) { return m->n_tensors; }
size_t ica_model_arena_size(const ica_model *m) { return m->slice; }
float *ica_model_params(ica_model *m) { return m->arena; }
float *ica_model_grads(ica_model *m) { return m->arena + m->slice; }
float *ica_model_adam_m(ica_model *m) { return m->arena + 2 * m->slice; }
float *ica_model_adam_v(ica_model *m) { return m->arena + 3 * m->slice; }
int64_t ica_model_adam_steps(const ica_model *m) { return m->adam_steps; }
void ica_model_set_adam_steps(ica_model *m, int64_t steps) { m->adam_steps = steps; }

ica_status ica_model_tensor_info(const ica_model *m, int index, const char **name, int *ndim,
                                 int shape[2], size_t *offset) {
    if (index < 0 || index >= m->n_tensors)
        return ica_fail(ICA_ERR_ARGUMENT, "tensor index %d is out of range [0, %d)", index,
                        m->n_tensors);
    const tensor_entry *t = &m->tensors[index];
    *name = t->name;
    *ndim = t->ndim;
    shape[0] = t->shape[0];
    shape[1] = t->shape[1];
    *offset = t->offset;
    return ICA_OK;
}

/* ------------------------------------------------------- activation arena */

/* The layers run over chunks of SEQS_PER_CHUNK sequences (120 rows at T = 60),
 * one chunk per thread at a time, so a chunk's intermediates (LayerNorm
 * outputs, GELU outputs, every activation gradient but the residual one) live
 * in a per-thread workspace that stays in L2; only what the backward pass
 * needs goes to (and comes back from) main memory. Going kernel by kernel over
 * the whole batch instead streams every intermediate through DRAM, and this
 * model is then memory-bound (about 17 GB/s here, not more on two threads).
 *
 * The weight gradients are summed per group of CHUNKS_PER_GROUP chunks (one
 * thread per group, chunks in order) into the group's partial copy of the
 * layer's gradients, and the partials are then added in group order: an
 * order fixed by the batch size alone, never by the thread count. */
#define SEQS_PER_CHUNK 2
#define CHUNKS_PER_GROUP 4

typedef struct { /* one thread's workspace for a chunk of rows (Mc = SEQS_PER_CHUNK T) */
    float *lnout;      /* (Mc,E): LayerNorm output */
    float *fcg;        /* (Mc,4E): GELU output, then the gradient of its input */
    float *dgelu;      /* (Mc,4E): GELU derivative */
    float *dln;        /* (Mc,E): gradient of a LayerNorm output */
    float *dqkv;       /* (Mc,3E) */
    float *ln_scratch; /* layernorm_backward partials */
    float *attn;       /* attention_forward/backward scratch (one thread) */
} workspace;

typedef struct {
    float *tokens;               /* (B,T,d) */
    float *res;                  /* (L+1) x (B,T,E): residual entering each layer; last = final */
    float *res2;                 /* L x (B,T,E): residual after attention (ffn) */
    float *ln1_mean, *ln1_rstd;  /* L x (B,T) */
    float *ln2_mean, *ln2_rstd;  /* L x (B,T) */
    float *qkv;                  /* L x (B,T,3E) */
    float *atty;                 /* L x (B,T,E): attention output before c_proj */
    float *fch;                  /* L x (B,T,4E): MLP pre-activation */
    float *lnf_mean, *lnf_rstd;  /* (B,T) */
    float *lnout;                /* (B,T,E): final LayerNorm output (read by the read-outs) */
    float *pred, *rhat;          /* (B,N,d), (B,N) */
    workspace *ws;               /* n_ws per-thread workspaces */
    int n_ws;
    size_t res_stride, layer_bt, layer_qkv, layer_bte, layer_fch;
    size_t rows; /* B * T */
    /* training only */
    float *dres;    /* (B,T,E): gradient of the residual stream, one layer at a time */
    float *dln;     /* (B,T,E): gradient of the final LayerNorm output */
    float *wt;      /* one layer's weights transposed: qkv^T | proj^T | fc^T | fcproj^T */
    float *partial; /* groups x layer_slice: per-group weight gradients of one layer */
    size_t layer_slice;
    float *dpred, *drhat;
    float *ln_scratch;
    double *loss_scratch;
    int *order_scratch;
} activations;

static float *take(float *base, size_t *cursor, size_t n) {
    float *p = base ? base + *cursor : NULL;
    *cursor += round_up(n);
    return p;
}

static int num_groups(int B) {
    int chunks = (B + SEQS_PER_CHUNK - 1) / SEQS_PER_CHUNK;
    return (chunks + CHUNKS_PER_GROUP - 1) / CHUNKS_PER_GROUP;
}

/* floats of the largest layer's slice of the parameter arena */
static size_t max_layer_slice(const ica_model *m) {
    size_t most = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        size_t end = l + 1 < m->cfg.n_layer ? m->layers[l + 1].ln1_w : m->lnf_w;
        if (end - m->layers[l].ln1_w > most) most = end - m->layers[l].ln1_w;
    }
    return most;
}

/* Carves the activation arena for a batch (B, N) and `threads` workspaces;
 * with base == NULL it only counts. train == 0 gives every layer the same
 * slot. Returns floats needed. */
static size_t layout_activations(const ica_model *m, int B, int N, int train, int threads,
                                 float *base, activations *a) {
    const ica_config *c = &m->cfg;
    size_t cur = 0, BT = (size_t)B * 3 * N, T = 3 * (size_t)N, E = c->n_embd, L = c->n_layer;
    size_t layers = train ? L : 1, Mc = SEQS_PER_CHUNK * T;
    workspace *ws = a->ws; /* keeps the caller's workspace table */
    memset(a, 0, sizeof *a);
    a->ws = ws;
    a->n_ws = threads;
    a->layer_bt = train ? BT : 0;
    a->layer_bte = train ? BT * E : 0;
    a->layer_qkv = train ? BT * 3 * E : 0;
    a->layer_fch = train ? BT * 4 * E : 0;
    a->res_stride = a->layer_bte;
    a->rows = BT;
    a->tokens = take(base, &cur, BT * c->n_dims);
    a->res = take(base, &cur, (train ? L + 1 : 1) * BT * E);
    a->ln1_mean = take(base, &cur, layers * BT);
    a->ln1_rstd = take(base, &cur, layers * BT);
    a->qkv = take(base, &cur, layers * BT * 3 * E);
    a->atty = take(base, &cur, layers * BT * E);
    if (c->ffn) {
        a->res2 = take(base, &cur, layers * BT * E);
        a->ln2_mean = take(base, &cur, layers * BT);
        a->ln2_rstd = take(base, &cur, layers * BT);
        a->fch = take(base, &cur, layers * BT * 4 * E);
    }
    a->lnf_mean = take(base, &cur, BT);
    a->lnf_rstd = take(base, &cur, BT);
    a->lnout = take(base, &cur, BT * E);
    a->pred = take(base, &cur, (size_t)B * N * c->n_dims);
    a->rhat = take(base, &cur, (size_t)B * N);
    for (int t = 0; t < threads; t++) {
        workspace w;
        w.lnout = take(base, &cur, Mc * E);
        w.fcg = take(base, &cur, Mc * 4 * E);
        w.dgelu = train ? take(base, &cur, Mc * 4 * E) : NULL;
        w.dln = train ? take(base, &cur, Mc * E) : NULL;
        w.dqkv = train ? take(base, &cur, Mc * 3 * E) : NULL;
        w.ln_scratch = train ? take(base, &cur, layernorm_scratch_floats((int)Mc, (int)E)) : NULL;
        w.attn = take(base, &cur, attention_scratch_floats((int)T, (int)E / c->n_head, 1));
        if (base) a->ws[t] = w;
    }
    if (train) {
        a->dres = take(base, &cur, BT * E);
        a->dln = take(base, &cur, BT * E);
        a->wt = take(base, &cur, 12 * E * E);
        a->layer_slice = max_layer_slice(m);
        a->partial = take(base, &cur, (size_t)num_groups(B) * a->layer_slice);
        a->dpred = take(base, &cur, (size_t)B * N * c->n_dims);
        a->drhat = take(base, &cur, (size_t)B * N);
        a->ln_scratch = take(base, &cur, layernorm_scratch_floats((int)BT, (int)E));
        a->loss_scratch = (double *)take(base, &cur, 2 * sequence_loss_scratch_doubles(B, N, c->n_dims));
        a->order_scratch = (int *)take(base, &cur, (size_t)B * N);
    }
    return cur;
}

/* Sizes the arena for (B, N) and the current thread count; it only grows, so
 * after the first call of a shape nothing is allocated. */
static ica_status prepare_activations(ica_model *m, int B, int N, int train, activations *a) {
    int threads = ica_threads();
    a->ws = NULL;
    size_t need = layout_activations(m, B, N, train, threads, NULL, a);
    if (need > m->acts_capacity || threads > m->ws_capacity) {
        ica_free_aligned(m->acts);
        free(m->ws);
        m->acts_capacity = 0;
        m->ws_capacity = 0;
        m->acts = ica_calloc_aligned(need * sizeof(float));
        m->ws = malloc(sizeof(workspace) * (size_t)threads);
        if (!m->acts || !m->ws)
            return ica_fail(ICA_ERR_NOMEM,
                            "out of memory for the activations of a batch of %d sequences "
                            "(%.1f MiB needed); use a smaller batch",
                            B, need * 4.0 / (1 << 20));
        m->acts_capacity = need;
        m->ws_capacity = threads;
    }
    a->ws = m->ws;
    layout_activations(m, B, N, train, threads, m->acts, a);
    return ICA_OK;
}

/* ------------------------------------------------------ inputs and output */

static ica_status check_inputs(const ica_model *m, const float *xs, const float *ys,
                               const float *rs, int B, int N) {
    int d = m->cfg.n_dims;
    if (B < 1) return ica_fail(ICA_ERR_ARGUMENT, "batch size must be >= 1, got %d", B);
    if (N < 1 || N > m->cfg.n_points)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "number of examples N=%d is outside [1, n_points=%d] of this model", N,
                        m->cfg.n_points);
    const float *arrays[3] = {xs, ys, rs};
    const char *names[3] = {"xs", "ys", "rs"};
    size_t sizes[3] = {(size_t)B * N * d, (size_t)B * N * d, (size_t)B * N};
    for (int i = 0; i < 3; i++) {
        ptrdiff_t bad = ica_find_nonfinite(arrays[i], sizes[i]);
        if (bad >= 0)
            return ica_fail(ICA_ERR_NONFINITE, "%s holds a non-finite value (%g) at flat index %td",
                            names[i], (double)arrays[i][bad], bad);
    }
    return ICA_OK;
}

/* tokens (B,T,d): x_n, y_n, [r_n, 0, ..., 0] for each example n. */
static void build_tokens(float *tokens, const float *xs, const float *ys, const float *rs, int B,
                         int N, int d) {
    for (size_t bn = 0; bn < (size_t)B * N; bn++) {
        float *tok = tokens + bn * 3 * d;
        memcpy(tok, xs + bn * d, sizeof(float) * d);
        memcpy(tok + d, ys + bn * d, sizeof(float) * d);
        memset(tok + 2 * d, 0, sizeof(float) * d);
        tok[2 * d] = rs[bn];
    }
}

/* out (B,N,D) = in[b, 3n + phase, :] (E) @ W (E,D) + bias, for the token of
 * example n at the given phase (0: x-token, 1: y-token). */
static void readout_forward(float *out, const float *in, const float *W, const float *bias,
                            int B, int N, int E, int D, int phase) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int bn = 0; bn < B * N; bn++) {
        const float *h = in + ((size_t)bn * 3 + phase) * E;
        float *o = out + (size_t)bn * D;
        for (int j = 0; j < D; j++) o[j] = bias[j];
        for (int e = 0; e < E; e++)
            for (int j = 0; j < D; j++) o[j] += h[e] * W[(size_t)e * D + j];
    }
}

/* dW (E,D), dbias (D) overwritten; din rows of the phase overwritten. */
static void readout_backward(float *din, float *dW, float *dbias, const float *dout,
                             const float *in, const float *W, int B, int N, int E, int D,
                             int phase) {
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int e = 0; e < E; e++) {
        float *dw = dW + (size_t)e * D;
        for (int j = 0; j < D; j++) dw[j] = 0.0f;
        for (int bn = 0; bn < B * N; bn++) {
            float h = in[((size_t)bn * 3 + phase) * E + e];
            for (int j = 0; j < D; j++) dw[j] += h * dout[(size_t)bn * D + j];
        }
    }
    for (int j = 0; j < D; j++) dbias[j] = 0.0f;
    for (int bn = 0; bn < B * N; bn++)
        for (int j = 0; j < D; j++) dbias[j] += dout[(size_t)bn * D + j];
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int bn = 0; bn < B * N; bn++) {
        float *dh = din + ((size_t)bn * 3 + phase) * E;
        const float *g = dout + (size_t)bn * D;
        for (int e = 0; e < E; e++) {
            float acc = 0.0f;
            for (int j = 0; j < D; j++) acc += g[j] * W[(size_t)e * D + j];
            dh[e] = acc;
        }
    }
}

/* ------------------------------------------------------------ forward */

/* This thread's workspace: chunk loops run inside `omp parallel`, one
 * workspace per thread of the team. */
static workspace *my_workspace(activations *a) {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    return &a->ws[tid < a->n_ws ? tid : 0];
}

/* Prefetch n floats at p for reading, or for writing (the line is fetched
 * in the exclusive state, so the stores that follow do not wait on memory). */
static void prefetch(const float *p, size_t n, int write) {
    if (write)
        for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 1, 2);
    else
        for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 2);
}

/* Layer l on rows [r0, r0 + Mc) (S whole sequences of T tokens). */
static void layer_forward(const ica_model *m, activations *a, workspace *w, int l, size_t r0,
                          int Mc, int S, int T) {
    const ica_config *c = &m->cfg;
    const float *P = m->arena;
    const layer_offsets *lo = &m->layers[l];
    const int E = c->n_embd, H = c->n_head;
    float *res_in = a->res + l * a->res_stride + r0 * E, *res_out = res_in + a->res_stride;
    float *qkv = a->qkv + l * a->layer_qkv + r0 * 3 * E, *atty = a->atty + l * a->layer_bte + r0 * E;
    size_t bt = l * a->layer_bt + r0;
    if (r0 + 2 * (size_t)Mc <= a->rows) { /* the next chunk: input and outputs */
        size_t nx = Mc;
        prefetch(res_in + nx * E, (size_t)Mc * E, 0);
        prefetch(qkv + nx * 3 * E, (size_t)Mc * 3 * E, 1);
        prefetch(atty + nx * E, (size_t)Mc * E, 1);
        prefetch(res_out + nx * E, (size_t)Mc * E, 1);
        if (c->ffn) {
            prefetch(a->res2 + l * a->layer_bte + (r0 + nx) * E, (size_t)Mc * E, 1);
            prefetch(a->fch + l * a->layer_fch + (r0 + nx) * 4 * E, (size_t)Mc * 4 * E, 1);
        }
    }

    layernorm_forward(w->lnout, a->ln1_mean + bt, a->ln1_rstd + bt, res_in, P + lo->ln1_w,
                      P + lo->ln1_b, Mc, E);
    matmul_forward(qkv, w->lnout, P + lo->qkv_w, P + lo->qkv_b, NULL, Mc, E, 3 * E);
    attention_forward(atty, w->attn, qkv, S, T, E, H, c->softmax, c->causal);
    /* the residual adds ride in the projections' epilogues (res_out may
     * alias res_in in inference, where every layer shares one slot) */
    if (!c->ffn) {
        matmul_forward(res_out, atty, P + lo->proj_w, P + lo->proj_b, res_in, Mc, E, E);
        return;
    }
    float *res2 = a->res2 + l * a->layer_bte + r0 * E, *fch = a->fch + l * a->layer_fch + r0 * 4 * E;
    matmul_forward(res2, atty, P + lo->proj_w, P + lo->proj_b, res_in, Mc, E, E);
    layernorm_forward(w->lnout, a->ln2_mean + bt, a->ln2_rstd + bt, res2, P + lo->ln2_w,
                      P + lo->ln2_b, Mc, E);
    matmul_forward(fch, w->lnout, P + lo->fc_w, P + lo->fc_b, NULL, Mc, E, 4 * E);
    gelu_forward(w->fcg, fch, (size_t)Mc * 4 * E);
    matmul_forward(res_out, w->fcg, P + lo->fcproj_w, P + lo->fcproj_b, res2, Mc, 4 * E, E);
}

static void forward(ica_model *m, activations *a, const float *xs, const float *ys,
                    const float *rs, int B, int N) {
    const ica_config *c = &m->cfg;
    const float *P = m->arena;
    int d = c->n_dims, E = c->n_embd, T = 3 * N;
    int chunks = (B + SEQS_PER_CHUNK - 1) / SEQS_PER_CHUNK;

    build_tokens(a->tokens, xs, ys, rs, B, N, d);
    /* Layer by layer, each thread over its chunks: a layer's weights stay in
     * the thread's L2 while its chunks pass. The static schedule gives a
     * thread the same chunks in every loop, and no reduction crosses rows, so
     * the loops need no barrier and the result does not depend on the
     * chunking. */
#pragma omp parallel num_threads(ica_threads())
    {
        workspace *w = my_workspace(a);
#pragma omp for schedule(static) nowait
        for (int ch = 0; ch < chunks; ch++) {
            int s0 = ch * SEQS_PER_CHUNK, S = B - s0 < SEQS_PER_CHUNK ? B - s0 : SEQS_PER_CHUNK;
            size_t r0 = (size_t)s0 * T;
            float *h = a->res + r0 * E;
            matmul_forward(h, a->tokens + r0 * d, P + m->read_in_w, P + m->read_in_b, NULL, S * T,
                           d, E);
            for (int r = 0; r < S * T; r++) {
                const float *pos = P + m->wpe + (size_t)(r % T) * E;
                for (int e = 0; e < E; e++) h[(size_t)r * E + e] += pos[e];
            }
        }
        for (int l = 0; l < c->n_layer; l++) {
#pragma omp for schedule(static) nowait
            for (int ch = 0; ch < chunks; ch++) {
                int s0 = ch * SEQS_PER_CHUNK, S = B - s0 < SEQS_PER_CHUNK ? B - s0 : SEQS_PER_CHUNK;
                layer_forward(m, a, w, l, (size_t)s0 * T, S * T, S, T);
            }
        }
#pragma omp for schedule(static)
        for (int ch = 0; ch < chunks; ch++) {
            int s0 = ch * SEQS_PER_CHUNK, S = B - s0 < SEQS_PER_CHUNK ? B - s0 : SEQS_PER_CHUNK;
            size_t r0 = (size_t)s0 * T;
            layernorm_forward(a->lnout + r0 * E, a->lnf_mean + r0, a->lnf_rstd + r0,
                              a->res + c->n_layer * a->res_stride + r0 * E, P + m->lnf_w,
                              P + m->lnf_b, S * T, E);
        }
    }
    readout_forward(a->pred, a->lnout, P + m->read_out_w, P + m->read_out_b, B, N, E, d, 0);
    if (c->reward_head)
        readout_forward(a->rhat, a->lnout, P + m->reward_w, P + m->reward_b, B, N, E, 1, 1);
}

/* ----------------------------------------------------------- backward */

/* Backward of layer l on rows [r0, r0 + Mc): a->dres rows hold the gradient
 * of the layer's output and receive that of its input; the weight gradients
 * go to G (the group's partial slice, laid out as the layer's part of the
 * gradient arena, based at layer_base), added unless `first`. a->wt holds
 * the layer's transposed weights. */
static void layer_backward(const ica_model *m, activations *a, workspace *w, int l, size_t r0,
                           int Mc, int S, int T, float *G, size_t layer_base, int first) {
    const ica_config *c = &m->cfg;
    const float *P = m->arena;
    const layer_offsets *lo = &m->layers[l];
    const int E = c->n_embd, H = c->n_head, acc = !first;
    const float *res_in = a->res + l * a->res_stride + r0 * E;
    const float *qkv = a->qkv + l * a->layer_qkv + r0 * 3 * E;
    const float *atty = a->atty + l * a->layer_bte + r0 * E;
    const float *wt_qkv = a->wt, *wt_proj = wt_qkv + 3 * E * E, *wt_fc = wt_proj + E * E,
                *wt_fcproj = wt_fc + 4 * E * E;
    float *dres = a->dres + r0 * E;
    size_t bt = l * a->layer_bt + r0;
    if (r0 + 2 * (size_t)Mc <= a->rows) { /* the next chunk's inputs, from DRAM */
        size_t nx = Mc;
        prefetch(res_in + nx * E, (size_t)Mc * E, 0);
        prefetch(qkv + nx * 3 * E, (size_t)Mc * 3 * E, 0);
        prefetch(atty + nx * E, (size_t)Mc * E, 0);
        prefetch(dres + nx * E, (size_t)Mc * E, 1);
        if (c->ffn) {
            prefetch(a->res2 + l * a->layer_bte + (r0 + nx) * E, (size_t)Mc * E, 0);
            prefetch(a->fch + l * a->layer_fch + (r0 + nx) * 4 * E, (size_t)Mc * 4 * E, 0);
        }
    }
#define GRAD(field) (G + (lo->field - layer_base))
    if (c->ffn) {
        const float *res2 = a->res2 + l * a->layer_bte + r0 * E;
        const float *fch = a->fch + l * a->layer_fch + r0 * 4 * E;
        const float *mean2 = a->ln2_mean + bt, *rstd2 = a->ln2_rstd + bt;
        float *dfc = w->fcg; /* the GELU output is dead once fcproj's gradient is in */
        gelu_forward_grad(w->fcg, w->dgelu, fch, (size_t)Mc * 4 * E);
        matmul_backward_weight(GRAD(fcproj_w), GRAD(fcproj_b), dres, w->fcg, Mc, 4 * E, E, acc);
        /* d(GELU input) = (dres @ W^T) * gelu'(fch), the product in the epilogue */
        matmul_backward_input(dfc, dres, wt_fcproj, w->dgelu, Mc, 4 * E, E);
        layernorm_apply(w->lnout, res2, mean2, rstd2, P + lo->ln2_w, P + lo->ln2_b, Mc, E);
        matmul_backward_weight(GRAD(fc_w), GRAD(fc_b), dfc, w->lnout, Mc, E, 4 * E, acc);
        matmul_backward_input(w->dln, dfc, wt_fc, NULL, Mc, E, 4 * E);
        layernorm_backward(dres, GRAD(ln2_w), GRAD(ln2_b), w->ln_scratch, w->dln, res2, mean2,
                           rstd2, P + lo->ln2_w, Mc, E, acc);
    }
    const float *mean1 = a->ln1_mean + bt, *rstd1 = a->ln1_rstd + bt;
    matmul_backward_weight(GRAD(proj_w), GRAD(proj_b), dres, atty, Mc, E, E, acc);
    matmul_backward_input(w->dln, dres, wt_proj, NULL, Mc, E, E);
    attention_backward(w->dqkv, w->attn, w->dln, qkv, S, T, E, H, c->softmax, c->causal);
    layernorm_apply(w->lnout, res_in, mean1, rstd1, P + lo->ln1_w, P + lo->ln1_b, Mc, E);
    matmul_backward_weight(GRAD(qkv_w), GRAD(qkv_b), w->dqkv, w->lnout, Mc, E, 3 * E, acc);
    matmul_backward_input(w->dln, w->dqkv, wt_qkv, NULL, Mc, E, 3 * E);
    layernorm_backward(dres, GRAD(ln1_w), GRAD(ln1_b), w->ln_scratch, w->dln, res_in, mean1,
                       rstd1, P + lo->ln1_w, Mc, E, acc);
#undef GRAD
}

static void backward(ica_model *m, activations *a, int B, int N) {
    const ica_config *c = &m->cfg;
    const float *P = m->arena;
    float *G = m->arena + m->slice;
    int d = c->n_dims, E = c->n_embd, T = 3 * N, M = B * T;
    size_t ME = (size_t)M * E;
    const int chunks = (B + SEQS_PER_CHUNK - 1) / SEQS_PER_CHUNK, groups = num_groups(B);

    /* Read-outs touch only the x-tokens (and y-tokens): the other rows of the
     * LayerNorm-output gradient are zero. */
    memset(a->dln, 0, ME * sizeof(float));
    readout_backward(a->dln, G + m->read_out_w, G + m->read_out_b, a->dpred, a->lnout,
                     P + m->read_out_w, B, N, E, d, 0);
    if (c->reward_head)
        readout_backward(a->dln, G + m->reward_w, G + m->reward_b, a->drhat, a->lnout,
                         P + m->reward_w, B, N, E, 1, 1);
    memset(a->dres, 0, ME * sizeof(float));
    layernorm_backward(a->dres, G + m->lnf_w, G + m->lnf_b, a->ln_scratch, a->dln,
                       a->res + c->n_layer * a->res_stride, a->lnf_mean, a->lnf_rstd,
                       P + m->lnf_w, M, E, 0);

    for (int l = c->n_layer - 1; l >= 0; l--) {
        const layer_offsets *lo = &m->layers[l];
        size_t base = lo->ln1_w;
        float *wt = a->wt;
        matmul_transpose(wt, P + lo->qkv_w, E, 3 * E);
        matmul_transpose(wt + 3 * E * E, P + lo->proj_w, E, E);
        if (c->ffn) {
            matmul_transpose(wt + 4 * E * E, P + lo->fc_w, E, 4 * E);
            matmul_transpose(wt + 8 * E * E, P + lo->fcproj_w, 4 * E, E);
        }
#pragma omp parallel num_threads(ica_threads())
        {
            workspace *w = my_workspace(a);
#pragma omp for schedule(static)
            for (int g = 0; g < groups; g++) {
                float *part = a->partial + (size_t)g * a->layer_slice;
                int ch_end = (g + 1) * CHUNKS_PER_GROUP < chunks ? (g + 1) * CHUNKS_PER_GROUP : chunks;
                for (int ch = g * CHUNKS_PER_GROUP; ch < ch_end; ch++) {
                    int s0 = ch * SEQS_PER_CHUNK, S = B - s0 < SEQS_PER_CHUNK ? B - s0 : SEQS_PER_CHUNK;
                    layer_backward(m, a, w, l, (size_t)s0 * T, S * T, S, T, part, base,
                                   ch == g * CHUNKS_PER_GROUP);
                }
            }
        }
        /* the layer's gradients: group partials added in group order */
        int t_first = 3 + l * (c->ffn ? 12 : 6), t_last = t_first + (c->ffn ? 12 : 6);
#pragma omp parallel num_threads(ica_threads())
        for (int t = t_first; t < t_last; t++) {
            const tensor_entry *te = &m->tensors[t];
            const float *src = a->partial + (te->offset - base);
#pragma omp for schedule(static)
            for (size_t i0 = 0; i0 < te->numel; i0 += 256) {
                size_t n = te->numel - i0 < 256 ? te->numel - i0 : 256;
                float *dst = G + te->offset + i0;
                memcpy(dst, src + i0, n * sizeof(float));
                for (int g = 1; g < groups; g++) { /* groups outer: vectorised adds */
                    const float *pg = src + (size_t)g * a->layer_slice + i0;
                    for (size_t i = 0; i < n; i++) dst[i] += pg[i];
                }
            }
        }
    }

    matmul_backward_weight(G + m->read_in_w, G + m->read_in_b, a->dres, a->tokens, M, d, E, 0);
    float *dwpe = G + m->wpe;
    memset(dwpe, 0, sizeof(float) * (size_t)3 * c->n_points * E);
#pragma omp parallel for schedule(static) num_threads(ica_threads())
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const float *g = a->dres + ((size_t)b * T + t) * E;
            for (int e = 0; e < E; e++) dwpe[(size_t)t * E + e] += g[e];
        }
}

/* --------------------------------------------------------- public calls */

ica_status ica_model_forward(ica_model *m, const float *xs, const float *ys, const float *rs,
                             int B, int N, float *pred, float *rhat) {
    ica_status st = check_inputs(m, xs, ys, rs, B, N);
    if (st != ICA_OK) return st;
    activations a;
    if ((st = prepare_activations(m, B, N, 0, &a)) != ICA_OK) return st;
    forward(m, &a, xs, ys, rs, B, N);
    size_t n_pred = (size_t)B * N * m->cfg.n_dims;
    ptrdiff_t bad = ica_find_nonfinite(a.pred, n_pred);
    if (bad >= 0)
        return ica_fail(ICA_ERR_NUMERIC,
                        "the prediction is not finite (%g at flat index %td): the parameters "
                        "hold NaN/inf or overflow",
                        (double)a.pred[bad], bad);
    memcpy(pred, a.pred, n_pred * sizeof(float));
    if (rhat && m->cfg.reward_head) memcpy(rhat, a.rhat, (size_t)B * N * sizeof(float));
    return ICA_OK;
}

ica_status ica_model_loss_and_grad(ica_model *m, const float *xs, const float *ys,
                                   const float *rs, int B, int N, ica_objective objective,
                                   ica_reward reward, float reward_weight, float *loss) {
    ica_status st = check_inputs(m, xs, ys, rs, B, N);
    if (st != ICA_OK) return st;
    if (N < 3)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "the training loss needs N >= 3 examples (predictions at n = 2..N-1), "
                        "got N=%d",
                        N);
    if ((unsigned)objective > ICA_OBJECTIVE_BT || (unsigned)reward > ICA_REWARD_NEG_SQ)
        return ica_fail(ICA_ERR_ARGUMENT, "unknown objective %d or reward %d", (int)objective,
                        (int)reward);
    if (!isfinite(reward_weight))
        return ica_fail(ICA_ERR_ARGUMENT, "reward_weight must be finite, got %g",
                        (double)reward_weight);
    activations a;
    if ((st = prepare_activations(m, B, N, 1, &a)) != ICA_OK) return st;
    forward(m, &a, xs, ys, rs, B, N);

    double total;
    sequence_loss_batch(a.pred, ys, rs, B, N, m->cfg.n_dims, objective, reward, &total, a.dpred,
                        a.loss_scratch, a.order_scratch, a.loss_scratch + B);
    if (m->cfg.reward_head) {
        double sq = 0.0, scale = 2.0 * reward_weight / ((double)B * N);
        for (int i = 0; i < B * N; i++) {
            double diff = (double)a.rhat[i] - rs[i];
            sq += diff * diff;
            a.drhat[i] = (float)(scale * diff);
        }
        total += reward_weight * sq / ((double)B * N);
    }
    *loss = (float)total;
    if (!isfinite(total))
        return ica_fail(ICA_ERR_NUMERIC,
                        "the loss is not finite (%g): the model diverged or its parameters "
                        "hold NaN/inf",
                        total);
    backward(m, &a, B, N);
    return ICA_OK;
}

ica_status ica_model_adam_update(ica_model *m, float lr, float beta1, float beta2, float eps) {
    if (!(lr >= 0.0f) || !isfinite(lr))
        return ica_fail(ICA_ERR_ARGUMENT, "lr must be a finite number >= 0, got %g", (double)lr);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return ica_fail(ICA_ERR_ARGUMENT, "Adam betas must lie in [0, 1), got (%g, %g)",
                        (double)beta1, (double)beta2);
    if (!(eps > 0.0f))
        return ica_fail(ICA_ERR_ARGUMENT, "Adam eps must be > 0, got %g", (double)eps);
    m->adam_steps++;
    adam_update(m->arena, ica_model_grads(m), ica_model_adam_m(m), ica_model_adam_v(m), m->slice,
                lr, beta1, beta2, eps, m->adam_steps);
    return ICA_OK;
}

ica_status ica_model_step(ica_model *m, const float *xs, const float *ys, const float *rs, int B,
                          int N, ica_objective objective, ica_reward reward, float reward_weight,
                          float lr, float *loss) {
    if (!(lr >= 0.0f) || !isfinite(lr))
        return ica_fail(ICA_ERR_ARGUMENT, "lr must be a finite number >= 0, got %g", (double)lr);
    ica_status st = ica_model_loss_and_grad(m, xs, ys, rs, B, N, objective, reward,
                                            reward_weight, loss);
    if (st != ICA_OK) return st;
    return ica_model_adam_update(m, lr, 0.9f, 0.999f, 1e-8f);
}
