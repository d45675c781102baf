/*
 * The GPT-2 (pre-LN) model over (x, y, r) triplets (docs/math.md, "The model
 * and its token layout").
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

/* One block's place in the parameter table, recorded as the layout is built:
 * its tensors are tensors[first .. first + count), and they occupy
 * [begin, end) of each arena slice (with their alignment padding), so a
 * block's gradients can be handled as one range. The fields are the offsets
 * of the individual tensors (the ln2/fc ones only with ffn). */
typedef struct {
    int first, count;
    size_t begin, end;
    size_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b;
    size_t ln2_w, ln2_b, fc_w, fc_b, fcproj_w, fcproj_b;
} layer_layout;

typedef struct workspace workspace;

struct ica_model {
    ica_config cfg;
    int n_tensors;
    tensor_entry *tensors;
    layer_layout *layers;
    size_t read_in_w, read_in_b, wpe, lnf_w, lnf_b, read_out_w, read_out_b, reward_w, reward_b;
    size_t slice; /* floats per arena slice */
    float *arena; /* params | grads | m | v */
    int64_t adam_steps;
    float *acts;
    size_t acts_capacity; /* floats */
    workspace *ws;        /* workspace table of the activation arena */
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
    if (c->ln_affine != 0 && c->ln_affine != 1)
        return ica_fail(ICA_ERR_ARGUMENT, "ln_affine must be 0 or 1, got %d", c->ln_affine);
    if (c->n_points > 100000 || c->n_embd > 65536 || c->n_layer > 10000 || c->n_dims > 65536)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "model sizes are unreasonably large (n_points=%d, "
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

/* The parts of a block, in their order, each a weight and a bias tensor
 * "h.<l>.<name>.weight" / ".bias": a linear map (weight (in E, out E), bias
 * (out E), zero) or a LayerNorm (in = 0: weight and bias vectors of out E,
 * ones and zeros), with the layer_layout fields that keep their offsets. An
 * architecture option that adds or drops parts selects them in add_block,
 * and uses them in layer_forward / layer_backward. */
typedef struct {
    const char *name;
    int in, out;
    init_kind init; /* of the weight */
    size_t weight, bias;
} block_part;

#define AT(field) offsetof(layer_layout, field)
static const block_part ATTENTION_PARTS[] = {
    {"ln_1", 0, 1, INIT_ONE, AT(ln1_w), AT(ln1_b)},
    {"attn.c_attn", 1, 3, INIT_NORMAL, AT(qkv_w), AT(qkv_b)},
    {"attn.c_proj", 1, 1, INIT_NORMAL_PROJ, AT(proj_w), AT(proj_b)},
};
static const block_part MLP_PARTS[] = {
    /* blocks with ffn */
    {"ln_2", 0, 1, INIT_ONE, AT(ln2_w), AT(ln2_b)},
    {"mlp.c_fc", 1, 4, INIT_NORMAL, AT(fc_w), AT(fc_b)},
    {"mlp.c_proj", 4, 1, INIT_NORMAL_PROJ, AT(fcproj_w), AT(fcproj_b)},
};
#undef AT

/* The n parts of block l from *count / *cursor on, offsets into *lo. */
static void add_parts(layer_layout *lo, tensor_entry *table, int *count, size_t *cursor,
                      const block_part *parts, int n, int l, int E) {
    for (int i = 0; i < n; i++) {
        const block_part *p = &parts[i];
        char name[MAX_NAME];
        snprintf(name, sizeof name, "h.%d.%s.weight", l, p->name);
        size_t w =
            p->in ? add_tensor(table, count, cursor, name, 2, p->in * E, p->out * E, p->init, 0)
                  : add_tensor(table, count, cursor, name, 1, p->out * E, 0, p->init, 0);
        snprintf(name, sizeof name, "h.%d.%s.bias", l, p->name);
        size_t b = add_tensor(table, count, cursor, name, 1, p->out * E, 0, INIT_ZERO, 0);
        memcpy((char *)lo + p->weight, &w, sizeof w);
        memcpy((char *)lo + p->bias, &b, sizeof b);
    }
}

/* Block l's tensors; records their range and offsets in *lo. */
static void add_block(layer_layout *lo, tensor_entry *table, int *count, size_t *cursor,
                      const ica_config *c, int l) {
    memset(lo, 0, sizeof *lo);
    lo->first = *count;
    lo->begin = *cursor;
    add_parts(lo, table, count, cursor, ATTENTION_PARTS, 3, l, c->n_embd);
    if (c->ffn) add_parts(lo, table, count, cursor, MLP_PARTS, 3, l, c->n_embd);
    lo->count = *count - lo->first;
    lo->end = *cursor;
}

/* The parameter list of the model, in its order. Called once with
 * table == NULL to count the tensors, then to fill the table and offsets. */
static void build_layout(ica_model *m, tensor_entry *table) {
    const ica_config *c = &m->cfg;
    int d = c->n_dims, E = c->n_embd, count = 0;
    size_t cursor = 0;
    m->read_in_w =
        add_tensor(table, &count, &cursor, "read_in.weight", 2, d, E, INIT_UNIFORM_FAN_IN, d);
    m->read_in_b =
        add_tensor(table, &count, &cursor, "read_in.bias", 1, E, 0, INIT_UNIFORM_FAN_IN, d);
    m->wpe = add_tensor(table, &count, &cursor, "wpe", 2, 3 * c->n_points, E, INIT_NORMAL, 0);
    for (int l = 0; l < c->n_layer; l++) {
        layer_layout lo;
        add_block(&lo, table, &count, &cursor, c, l);
        if (table) m->layers[l] = lo;
    }
    m->lnf_w = add_tensor(table, &count, &cursor, "ln_f.weight", 1, E, 0, INIT_ONE, 0);
    m->lnf_b = add_tensor(table, &count, &cursor, "ln_f.bias", 1, E, 0, INIT_ZERO, 0);
    m->read_out_w =
        add_tensor(table, &count, &cursor, "read_out.weight", 2, E, d, INIT_UNIFORM_FAN_IN, E);
    m->read_out_b =
        add_tensor(table, &count, &cursor, "read_out.bias", 1, d, 0, INIT_UNIFORM_FAN_IN, E);
    if (c->reward_head) {
        m->reward_w = add_tensor(table, &count, &cursor, "read_reward.weight", 2, E, 1,
                                 INIT_UNIFORM_FAN_IN, E);
        m->reward_b =
            add_tensor(table, &count, &cursor, "read_reward.bias", 1, 1, 0, INIT_UNIFORM_FAN_IN, E);
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

ica_status ica_model_create(ica_model **out, const ica_config *cfg, uint64_t seed) {
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

/* The accessors take a model from ica_model_create (never NULL). */
const ica_config *ica_model_config(const ica_model *m) { return &m->cfg; }
int ica_model_num_tensors(const ica_model *m) { return m->n_tensors; }
size_t ica_model_arena_size(const ica_model *m) { return m->slice; }
float *ica_model_params(ica_model *m) { return m->arena; }
float *ica_model_grads(ica_model *m) { return m->arena + m->slice; }
float *ica_model_adam_m(ica_model *m) { return m->arena + 2 * m->slice; }
float *ica_model_adam_v(ica_model *m) { return m->arena + 3 * m->slice; }
int64_t ica_model_adam_steps(const ica_model *m) { return m->adam_steps; }
void ica_model_set_adam_steps(ica_model *m, int64_t steps) { m->adam_steps = steps; }

ica_status ica_model_tensor_info(const ica_model *m, const char **name, int *ndim, int shape[2],
                                 size_t *offset, int index) {
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

struct workspace {     /* one thread's workspace for a chunk of rows (Mc = SEQS_PER_CHUNK T) */
    float *lnout;      /* (Mc,E): LayerNorm output */
    float *fcg;        /* (Mc,4E): GELU output, then the gradient of its input */
    float *dgelu;      /* (Mc,4E): GELU derivative */
    float *dln;        /* (Mc,E): gradient of a LayerNorm output */
    float *dqkv;       /* (Mc,3E) */
    float *ln_scratch; /* layernorm_backward partials */
    float *attn;       /* attention_forward/backward scratch (one thread) */
};

/* One layer's weight matrices transposed (N,K) for matmul_backward_input,
 * packed once per layer by transpose_layer_weights; fc ones only with ffn. */
typedef struct {
    float *qkv, *proj, *fc, *fcproj;
} transposed_weights;

typedef struct {
    float *tokens;              /* (B,T,d) */
    float *res;                 /* (L+1) x (B,T,E): residual entering each layer; last = final */
    float *res2;                /* L x (B,T,E): residual after attention (ffn) */
    float *ln1_mean, *ln1_rstd; /* L x (B,T) */
    float *ln2_mean, *ln2_rstd; /* L x (B,T) */
    float *qkv;                 /* L x (B,T,3E) */
    float *atty;                /* L x (B,T,E): attention output before c_proj */
    float *fch;                 /* L x (B,T,4E): MLP pre-activation */
    float *lnf_mean, *lnf_rstd; /* (B,T) */
    float *lnout;               /* (B,T,E): final LayerNorm output (read by the read-outs) */
    float *pred, *rhat;         /* (B,N,d), (B,N) */
    float *probs;               /* (B,L,H,T,T) attention probabilities to keep, or NULL */
    workspace *ws;              /* n_ws per-thread workspaces */
    int n_ws;
    size_t res_stride, layer_bt, layer_qkv, layer_bte, layer_fch;
    size_t rows; /* B * T */
    /* training only */
    float *dres; /* (B,T,E): gradient of the residual stream, one layer at a time */
    float *dln;  /* (B,T,E): gradient of the final LayerNorm output */
    transposed_weights wt;
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

static int num_chunks(int B) { return (B + SEQS_PER_CHUNK - 1) / SEQS_PER_CHUNK; }

static int num_groups(int B) { return (num_chunks(B) + CHUNKS_PER_GROUP - 1) / CHUNKS_PER_GROUP; }

/* Chunk ch of a batch of B: its first sequence (*s0) and how many (returned). */
static int chunk_seqs(int B, int ch, int *s0) {
    *s0 = ch * SEQS_PER_CHUNK;
    return B - *s0 < SEQS_PER_CHUNK ? B - *s0 : SEQS_PER_CHUNK;
}

/* floats of the largest layer's range of the parameter arena */
static size_t max_layer_slice(const ica_model *m) {
    size_t most = 0;
    for (int l = 0; l < m->cfg.n_layer; l++) {
        size_t span = m->layers[l].end - m->layers[l].begin;
        if (span > most) most = span;
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
        a->wt.qkv = take(base, &cur, 3 * E * E);
        a->wt.proj = take(base, &cur, E * E);
        if (c->ffn) {
            a->wt.fc = take(base, &cur, 4 * E * E);
            a->wt.fcproj = take(base, &cur, 4 * E * E);
        }
        a->layer_slice = max_layer_slice(m);
        a->partial = take(base, &cur, (size_t)num_groups(B) * a->layer_slice);
        a->dpred = take(base, &cur, (size_t)B * N * c->n_dims);
        a->drhat = take(base, &cur, (size_t)B * N);
        a->ln_scratch = take(base, &cur, layernorm_scratch_floats((int)BT, (int)E));
        a->loss_scratch =
            (double *)take(base, &cur, 2 * sequence_loss_scratch_doubles(B, N, c->n_dims));
        a->order_scratch = (int *)take(base, &cur, (size_t)B * N);
    }
    return cur;
}

/* Sizes the arena for (B, N) and the context's thread count; it only grows,
 * so after the first call of a shape nothing is allocated. */
static ica_status prepare_activations(const ica_ctx *ctx, ica_model *m, activations *a, int B,
                                      int N, int train) {
    int threads = ctx->threads;
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

/* Batch sizes and input values of forward and loss_and_grad. The size checks
 * come first: the batch's rows (B * 3N) must fit the kernels' int row counts
 * and its activations a 64-bit size, before anything is allocated. */
static ica_status check_inputs(const ica_model *m, const float *xs, const float *ys,
                               const float *rs, int B, int N) {
    const ica_config *c = &m->cfg;
    if (B < 1) return ica_fail(ICA_ERR_ARGUMENT, "batch size must be >= 1, got %d", B);
    if (N < 1 || N > c->n_points)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "number of examples N=%d is outside [1, n_points=%d] of this model", N,
                        c->n_points);
    size_t rows = (size_t)B * 3 * (size_t)N, n_x, n_r, n_acts;
    if (rows > (size_t)INT32_MAX)
        return ica_fail(ICA_ERR_NOMEM,
                        "a batch of B=%d sequences of N=%d examples has %zu token rows, more "
                        "than the %d one call can process; split the batch",
                        B, N, rows, (int)INT32_MAX);
    ica_status st;
    if ((st = ica_check_size(&n_x, "xs", B, N, c->n_dims)) != ICA_OK ||
        (st = ica_check_size(&n_r, "rs", B, N, 1)) != ICA_OK ||
        (st = ica_check_size(&n_acts, "the activations of the batch", (size_t)c->n_layer + 1, rows,
                             16 * (size_t)c->n_embd)) != ICA_OK ||
        (st = ica_check_finite("xs", xs, n_x)) != ICA_OK ||
        (st = ica_check_finite("ys", ys, n_x)) != ICA_OK ||
        (st = ica_check_finite("rs", rs, n_r)) != ICA_OK)
        return st;
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
static void readout_forward(const ica_ctx *ctx, float *out, const float *in, const float *W,
                            const float *bias, int B, int N, int E, int D, int phase) {
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int bn = 0; bn < B * N; bn++) {
        const float *h = in + ((size_t)bn * 3 + phase) * E;
        float *o = out + (size_t)bn * D;
        for (int j = 0; j < D; j++) o[j] = bias[j];
        for (int e = 0; e < E; e++)
            for (int j = 0; j < D; j++) o[j] += h[e] * W[(size_t)e * D + j];
    }
}

/* dW (E,D), dbias (D) overwritten; din rows of the phase overwritten. */
static void readout_backward(const ica_ctx *ctx, float *din, float *dW, float *dbias,
                             const float *dout, const float *in, const float *W, int B, int N,
                             int E, int D, int phase) {
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
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
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
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

/* ------------------------------------------------------- chunk passes */

/* One pass (forward or backward) over a batch: what every chunk needs. The
 * chunk work runs on one thread each, with `serial`: the call's kernels on
 * the calling thread alone. */
typedef struct {
    const ica_ctx *ctx;
    ica_ctx serial;
    const ica_model *m;
    activations *a;
    int B, N, T;
} batch_pass;

static batch_pass begin_pass(const ica_ctx *ctx, const ica_model *m, activations *a, int B, int N) {
    batch_pass p = {ctx, ica_ctx_serial(ctx), m, a, B, N, 3 * N};
    return p;
}

/* This thread's workspace: chunk loops run inside `omp parallel` with
 * ctx->threads threads, and the arena holds that many workspaces. */
static workspace *my_workspace(const batch_pass *p) {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    ICA_ASSERT(tid < p->a->n_ws);
    return &p->a->ws[tid];
}

/* Work on S whole sequences from row r0 (S T rows), for layer l. */
typedef void (*chunk_fn)(const batch_pass *p, workspace *w, int l, size_t r0, int S);

/* fn on every chunk of the batch, called from inside `omp parallel`: the
 * static schedule gives a thread the same chunks in every such loop, and
 * no reduction crosses rows, so consecutive loops need no barrier. */
static void for_each_chunk(const batch_pass *p, workspace *w, chunk_fn fn, int l) {
    const int chunks = num_chunks(p->B);
#pragma omp for schedule(static) nowait
    for (int ch = 0; ch < chunks; ch++) {
        int s0, S = chunk_seqs(p->B, ch, &s0);
        fn(p, w, l, (size_t)s0 * p->T, S);
    }
}

/* Prefetch n floats at p for reading, or for writing (the line is fetched
 * in the exclusive state, so the stores that follow do not wait on memory). */
static void prefetch(const float *p, size_t n, int write) {
    if (write)
        for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 1, 2);
    else
        for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 2);
}

/* The saved activations of layer l that a chunk's rows from r0 read or
 * write: forward and backward prefetch the next chunk's with this. */
typedef struct {
    float *res_in, *res_out, *qkv, *atty, *res2, *fch;
    size_t bt; /* index of row r0 in the layer's LayerNorm statistics */
} layer_rows;

static layer_rows rows_of(const activations *a, int ffn, int l, size_t r0, size_t E) {
    layer_rows r = {0};
    r.res_in = a->res + l * a->res_stride + r0 * E;
    r.res_out = r.res_in + a->res_stride;
    r.qkv = a->qkv + l * a->layer_qkv + r0 * 3 * E;
    r.atty = a->atty + l * a->layer_bte + r0 * E;
    if (ffn) {
        r.res2 = a->res2 + l * a->layer_bte + r0 * E;
        r.fch = a->fch + l * a->layer_fch + r0 * 4 * E;
    }
    r.bt = l * a->layer_bt + r0;
    return r;
}

/* Prefetch the next chunk's rows of layer l (when there is a next chunk of
 * Mc rows): what `forward` writes, or what the backward pass reads. */
static void prefetch_next_chunk(const activations *a, int ffn, int l, size_t r0, int Mc, size_t E,
                                int forward) {
    if (r0 + 2 * (size_t)Mc > a->rows) return;
    layer_rows nx = rows_of(a, ffn, l, r0 + Mc, E);
    prefetch(nx.res_in, (size_t)Mc * E, 0);
    prefetch(nx.qkv, (size_t)Mc * 3 * E, forward);
    prefetch(nx.atty, (size_t)Mc * E, forward);
    if (forward)
        prefetch(nx.res_out, (size_t)Mc * E, 1);
    else
        prefetch(a->dres + (r0 + Mc) * E, (size_t)Mc * E, 1);
    if (ffn) {
        prefetch(nx.res2, (size_t)Mc * E, forward);
        prefetch(nx.fch, (size_t)Mc * 4 * E, forward);
    }
}

/* ------------------------------------------------------------ forward */

/* Read-in and position embedding of S sequences from row r0. */
static void embed_chunk(const batch_pass *p, workspace *w, int l, size_t r0, int S) {
    const ica_model *m = p->m;
    const float *P = m->arena;
    const int d = m->cfg.n_dims, E = m->cfg.n_embd, T = p->T;
    float *h = p->a->res + r0 * E;
    (void)w, (void)l;
    matmul_forward(&p->serial, h, p->a->tokens + r0 * d, NULL, P + m->read_in_w, P + m->read_in_b,
                   S * T, d, E);
    for (int r = 0; r < S * T; r++) {
        const float *pos = P + m->wpe + (size_t)(r % T) * E;
        for (int e = 0; e < E; e++) h[(size_t)r * E + e] += pos[e];
    }
}

/* Layer l on the S sequences from row r0 (Mc = S T rows). */
static void layer_forward(const batch_pass *p, workspace *w, int l, size_t r0, int S) {
    const ica_ctx *ctx = &p->serial;
    const ica_config *c = &p->m->cfg;
    const float *P = p->m->arena;
    const layer_layout *lo = &p->m->layers[l];
    activations *a = p->a;
    const int E = c->n_embd, H = c->n_head, T = p->T, Mc = S * T;
    layer_rows r = rows_of(a, c->ffn, l, r0, E);
    prefetch_next_chunk(a, c->ffn, l, r0, Mc, E, 1);

    layernorm_forward(ctx, w->lnout, a->ln1_mean + r.bt, a->ln1_rstd + r.bt, r.res_in,
                      P + lo->ln1_w, P + lo->ln1_b, Mc, E, c->ln_affine);
    matmul_forward(ctx, r.qkv, w->lnout, NULL, P + lo->qkv_w, P + lo->qkv_b, Mc, E, 3 * E);
    float *probs = a->probs ? a->probs + ((r0 / T) * c->n_layer + l) * H * (size_t)T * T : NULL;
    attention_forward(ctx, r.atty, w->attn, r.qkv, S, T, E, H, c->softmax, c->causal, probs,
                      (size_t)c->n_layer * H * T * T);
    /* the residual adds ride in the projections' epilogues (res_out may
     * alias res_in in inference, where every layer shares one slot) */
    if (!c->ffn) {
        matmul_forward(ctx, r.res_out, r.atty, r.res_in, P + lo->proj_w, P + lo->proj_b, Mc, E, E);
        return;
    }
    matmul_forward(ctx, r.res2, r.atty, r.res_in, P + lo->proj_w, P + lo->proj_b, Mc, E, E);
    layernorm_forward(ctx, w->lnout, a->ln2_mean + r.bt, a->ln2_rstd + r.bt, r.res2, P + lo->ln2_w,
                      P + lo->ln2_b, Mc, E, c->ln_affine);
    matmul_forward(ctx, r.fch, w->lnout, NULL, P + lo->fc_w, P + lo->fc_b, Mc, E, 4 * E);
    gelu_forward(ctx, w->fcg, r.fch, (size_t)Mc * 4 * E);
    matmul_forward(ctx, r.res_out, w->fcg, r.res2, P + lo->fcproj_w, P + lo->fcproj_b, Mc, 4 * E,
                   E);
}

/* Final LayerNorm of S sequences from row r0. */
static void final_norm_chunk(const batch_pass *p, workspace *w, int l, size_t r0, int S) {
    const ica_model *m = p->m;
    const float *P = m->arena;
    activations *a = p->a;
    const int E = m->cfg.n_embd;
    (void)w, (void)l;
    layernorm_forward(&p->serial, a->lnout + r0 * E, a->lnf_mean + r0, a->lnf_rstd + r0,
                      a->res + m->cfg.n_layer * a->res_stride + r0 * E, P + m->lnf_w, P + m->lnf_b,
                      S * p->T, E, m->cfg.ln_affine);
}

static void forward(const ica_ctx *ctx, const ica_model *m, activations *a, const float *xs,
                    const float *ys, const float *rs, int B, int N) {
    const ica_config *c = &m->cfg;
    const float *P = m->arena;
    const batch_pass p = begin_pass(ctx, m, a, B, N);
    build_tokens(a->tokens, xs, ys, rs, B, N, c->n_dims);
    /* Layer by layer, each thread over its chunks: a layer's weights stay in
     * the thread's L2 while its chunks pass. */
#pragma omp parallel num_threads(ctx->threads)
    {
        workspace *w = my_workspace(&p);
        for_each_chunk(&p, w, embed_chunk, 0);
        for (int l = 0; l < c->n_layer; l++) for_each_chunk(&p, w, layer_forward, l);
        for_each_chunk(&p, w, final_norm_chunk, c->n_layer);
    }
    readout_forward(ctx, a->pred, a->lnout, P + m->read_out_w, P + m->read_out_b, B, N, c->n_embd,
                    c->n_dims, 0);
    if (c->reward_head)
        readout_forward(ctx, a->rhat, a->lnout, P + m->reward_w, P + m->reward_b, B, N, c->n_embd,
                        1, 1);
}

/* ----------------------------------------------------------- backward */

/* Backward of layer l on the S sequences from row r0 (Mc = S T rows):
 * a->dres rows hold the gradient of the layer's output and receive that of
 * its input; the weight gradients go to G (the group's partial slice, laid
 * out as the layer's range of the gradient arena), added unless `first`.
 * a->wt holds the layer's transposed weights. */
static void layer_backward(const batch_pass *p, workspace *w, int l, size_t r0, int S, float *G,
                           int first) {
    const ica_ctx *ctx = &p->serial;
    const ica_config *c = &p->m->cfg;
    const float *P = p->m->arena;
    const layer_layout *lo = &p->m->layers[l];
    activations *a = p->a;
    const int E = c->n_embd, H = c->n_head, T = p->T, Mc = S * T, acc = !first;
    const layer_rows r = rows_of(a, c->ffn, l, r0, E);
    float *dres = a->dres + r0 * E;
    prefetch_next_chunk(a, c->ffn, l, r0, Mc, E, 0);
#define GRAD(field) (G + (lo->field - lo->begin))
    if (c->ffn) {
        const float *mean2 = a->ln2_mean + r.bt, *rstd2 = a->ln2_rstd + r.bt;
        float *dfc = w->fcg; /* the GELU output is dead once fcproj's gradient is in */
        gelu_forward_grad(ctx, w->fcg, w->dgelu, r.fch, (size_t)Mc * 4 * E);
        matmul_backward_weight(ctx, GRAD(fcproj_w), GRAD(fcproj_b), dres, w->fcg, Mc, 4 * E, E,
                               acc);
        /* d(GELU input) = (dres @ W^T) * gelu'(fch), the product in the epilogue */
        matmul_backward_input(ctx, dfc, dres, w->dgelu, a->wt.fcproj, Mc, 4 * E, E);
        layernorm_apply(ctx, w->lnout, r.res2, mean2, rstd2, P + lo->ln2_w, P + lo->ln2_b, Mc, E);
        matmul_backward_weight(ctx, GRAD(fc_w), GRAD(fc_b), dfc, w->lnout, Mc, E, 4 * E, acc);
        matmul_backward_input(ctx, w->dln, dfc, NULL, a->wt.fc, Mc, E, 4 * E);
        layernorm_backward(ctx, dres, GRAD(ln2_w), GRAD(ln2_b), w->ln_scratch, w->dln, r.res2,
                           mean2, rstd2, P + lo->ln2_w, Mc, E, acc, c->ln_affine);
    }
    const float *mean1 = a->ln1_mean + r.bt, *rstd1 = a->ln1_rstd + r.bt;
    matmul_backward_weight(ctx, GRAD(proj_w), GRAD(proj_b), dres, r.atty, Mc, E, E, acc);
    matmul_backward_input(ctx, w->dln, dres, NULL, a->wt.proj, Mc, E, E);
    attention_backward(ctx, w->dqkv, w->attn, w->dln, r.qkv, S, T, E, H, c->softmax, c->causal);
    layernorm_apply(ctx, w->lnout, r.res_in, mean1, rstd1, P + lo->ln1_w, P + lo->ln1_b, Mc, E);
    matmul_backward_weight(ctx, GRAD(qkv_w), GRAD(qkv_b), w->dqkv, w->lnout, Mc, E, 3 * E, acc);
    matmul_backward_input(ctx, w->dln, w->dqkv, NULL, a->wt.qkv, Mc, E, 3 * E);
    layernorm_backward(ctx, dres, GRAD(ln1_w), GRAD(ln1_b), w->ln_scratch, w->dln, r.res_in, mean1,
                       rstd1, P + lo->ln1_w, Mc, E, acc, c->ln_affine);
#undef GRAD
}

/* Gradients of the read-outs and the final LayerNorm; a->dres receives the
 * gradient of the last layer's output. The read-outs touch only the
 * x-tokens (and y-tokens): the other rows of the LayerNorm-output gradient
 * are zero. */
static void readouts_backward(const ica_ctx *ctx, ica_model *m, activations *a, int B, int N) {
    const ica_config *c = &m->cfg;
    const float *P = m->arena;
    float *G = ica_model_grads(m);
    const int E = c->n_embd, M = B * 3 * N;
    memset(a->dln, 0, (size_t)M * E * sizeof(float));
    readout_backward(ctx, a->dln, G + m->read_out_w, G + m->read_out_b, a->dpred, a->lnout,
                     P + m->read_out_w, B, N, E, c->n_dims, 0);
    if (c->reward_head)
        readout_backward(ctx, a->dln, G + m->reward_w, G + m->reward_b, a->drhat, a->lnout,
                         P + m->reward_w, B, N, E, 1, 1);
    memset(a->dres, 0, (size_t)M * E * sizeof(float));
    layernorm_backward(ctx, a->dres, G + m->lnf_w, G + m->lnf_b, a->ln_scratch, a->dln,
                       a->res + c->n_layer * a->res_stride, a->lnf_mean, a->lnf_rstd, P + m->lnf_w,
                       M, E, 0, c->ln_affine);
}

/* a->wt = layer l's weight matrices transposed, the B operands of its input
 * gradients. */
static void transpose_layer_weights(const ica_ctx *ctx, const ica_model *m, activations *a, int l) {
    const float *P = m->arena;
    const layer_layout *lo = &m->layers[l];
    const int E = m->cfg.n_embd;
    matmul_transpose(ctx, a->wt.qkv, P + lo->qkv_w, E, 3 * E);
    matmul_transpose(ctx, a->wt.proj, P + lo->proj_w, E, E);
    if (m->cfg.ffn) {
        matmul_transpose(ctx, a->wt.fc, P + lo->fc_w, E, 4 * E);
        matmul_transpose(ctx, a->wt.fcproj, P + lo->fcproj_w, 4 * E, E);
    }
}

/* Layer l's backward over the batch: group g sums its chunks, in order, into
 * its partial slice a->partial + g * layer_slice (one thread per group). */
static void layer_backward_groups(const batch_pass *p, int l) {
    activations *a = p->a;
    const int chunks = num_chunks(p->B), groups = num_groups(p->B);
#pragma omp parallel num_threads(p->ctx->threads)
    {
        workspace *w = my_workspace(p);
#pragma omp for schedule(static)
        for (int g = 0; g < groups; g++) {
            float *part = a->partial + (size_t)g * a->layer_slice;
            int ch0 = g * CHUNKS_PER_GROUP;
            int ch_end = ch0 + CHUNKS_PER_GROUP < chunks ? ch0 + CHUNKS_PER_GROUP : chunks;
            for (int ch = ch0; ch < ch_end; ch++) {
                int s0, S = chunk_seqs(p->B, ch, &s0);
                layer_backward(p, w, l, (size_t)s0 * p->T, S, part, ch == ch0);
            }
        }
    }
}

/* Layer l's gradients = its group partials added in group order. */
static void reduce_layer_partials(const ica_ctx *ctx, ica_model *m, activations *a, int l,
                                  int groups) {
    const layer_layout *lo = &m->layers[l];
    float *G = ica_model_grads(m);
#pragma omp parallel num_threads(ctx->threads)
    for (int t = lo->first; t < lo->first + lo->count; t++) {
        const tensor_entry *te = &m->tensors[t];
        const float *src = a->partial + (te->offset - lo->begin);
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

/* Gradients of the read-in and the position embedding from a->dres, the
 * gradient of the first layer's input. */
static void embedding_backward(const ica_ctx *ctx, ica_model *m, activations *a, int B, int N) {
    const ica_config *c = &m->cfg;
    float *G = ica_model_grads(m);
    const int d = c->n_dims, E = c->n_embd, T = 3 * N;
    matmul_backward_weight(ctx, G + m->read_in_w, G + m->read_in_b, a->dres, a->tokens, B * T, d, E,
                           0);
    float *dwpe = G + m->wpe;
    memset(dwpe, 0, sizeof(float) * (size_t)3 * c->n_points * E);
#pragma omp parallel for schedule(static) num_threads(ctx->threads)
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const float *g = a->dres + ((size_t)b * T + t) * E;
            for (int e = 0; e < E; e++) dwpe[(size_t)t * E + e] += g[e];
        }
}

static void backward(const ica_ctx *ctx, ica_model *m, activations *a, int B, int N) {
    const batch_pass p = begin_pass(ctx, m, a, B, N);
    readouts_backward(ctx, m, a, B, N);
    for (int l = m->cfg.n_layer - 1; l >= 0; l--) {
        transpose_layer_weights(ctx, m, a, l);
        layer_backward_groups(&p, l);
        reduce_layer_partials(ctx, m, a, l, num_groups(B));
    }
    embedding_backward(ctx, m, a, B, N);
}

/* --------------------------------------------------------- public calls */

static ica_status check_model(const ica_model *m) {
    if (!m) return ica_fail(ICA_ERR_ARGUMENT, "the model is NULL (not created)");
    return ICA_OK;
}

static ica_status forward_call(ica_model *m, activations *a, float *probs, const float *xs,
                               const float *ys, const float *rs, int B, int N) {
    const ica_ctx ctx = ica_ctx_begin();
    ica_status st;
    if ((st = check_model(m)) != ICA_OK || (st = check_inputs(m, xs, ys, rs, B, N)) != ICA_OK)
        return st;
    if ((st = prepare_activations(&ctx, m, a, B, N, 0)) != ICA_OK) return st;
    a->probs = probs;
    forward(&ctx, m, a, xs, ys, rs, B, N);
    return ICA_OK;
}

ica_status ica_model_attention_maps(ica_model *m, float *probs, const float *xs, const float *ys,
                                    const float *rs, int B, int N) {
    activations a;
    if (!probs) return ica_fail(ICA_ERR_ARGUMENT, "probs must not be NULL");
    return forward_call(m, &a, probs, xs, ys, rs, B, N);
}

ica_status ica_model_forward(ica_model *m, float *pred, float *rhat, const float *xs,
                             const float *ys, const float *rs, int B, int N) {
    activations a;
    ica_status st = forward_call(m, &a, NULL, xs, ys, rs, B, N);
    if (st != ICA_OK) return st;
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

/* The name of the tensor holding arena element i (or of the padding after it). */
static const char *tensor_at(const ica_model *m, size_t i) {
    const char *name = m->tensors[0].name;
    for (int t = 0; t < m->n_tensors && m->tensors[t].offset <= i; t++) name = m->tensors[t].name;
    return name;
}

static ica_status loss_and_grad(const ica_ctx *ctx, ica_model *m, float *loss, const float *xs,
                                const float *ys, const float *rs, int B, int N,
                                ica_objective objective, ica_reward reward, float reward_weight) {
    ica_status st;
    if ((st = check_model(m)) != ICA_OK || (st = check_inputs(m, xs, ys, rs, B, N)) != ICA_OK)
        return st;
    if (N < 3)
        return ica_fail(ICA_ERR_ARGUMENT,
                        "the training loss needs N >= 3 examples (predictions at n = 2..N-1), "
                        "got N=%d",
                        N);
    if ((st = ica_check_objective(objective, reward)) != ICA_OK) return st;
    if (!ica_is_finite(reward_weight))
        return ica_fail(ICA_ERR_ARGUMENT, "reward_weight must be finite, got %g",
                        (double)reward_weight);
    activations a;
    if ((st = prepare_activations(ctx, m, &a, B, N, 1)) != ICA_OK) return st;
    forward(ctx, m, &a, xs, ys, rs, B, N);

    double total;
    sequence_loss_batch(ctx, &total, a.dpred, a.loss_scratch, a.order_scratch, a.loss_scratch + B,
                        a.pred, ys, rs, B, N, m->cfg.n_dims, objective, reward);
    if (m->cfg.reward_head) {
        double sq = 0.0, scale = 2.0 * reward_weight / ((double)B * N);
        for (size_t i = 0; i < (size_t)B * N; i++) {
            double diff = (double)a.rhat[i] - rs[i];
            sq += diff * diff;
            a.drhat[i] = (float)(scale * diff);
        }
        total += reward_weight * sq / ((double)B * N);
    }
    *loss = (float)total;
    if (ica_find_nonfinite(loss, 1) >= 0) /* NaN or inf, or beyond float32 */
        return ica_fail(ICA_ERR_NUMERIC,
                        "the loss is not finite (%g): the model diverged or its parameters "
                        "hold NaN/inf",
                        total);
    backward(ctx, m, &a, B, N);
    ptrdiff_t bad = ica_find_nonfinite(ica_model_grads(m), m->slice);
    if (bad >= 0) /* a finite loss can still overflow its gradient (inputs near FLT_MAX) */
        return ica_fail(ICA_ERR_NUMERIC,
                        "the gradient is not finite (%s, element %td of the arena) although "
                        "the loss is (%g): an input or a parameter is too large",
                        tensor_at(m, (size_t)bad), bad, total);
    return ICA_OK;
}

ica_status ica_model_loss_and_grad(ica_model *m, float *loss, const float *xs, const float *ys,
                                   const float *rs, int B, int N, ica_objective objective,
                                   ica_reward reward, float reward_weight) {
    const ica_ctx ctx = ica_ctx_begin();
    return loss_and_grad(&ctx, m, loss, xs, ys, rs, B, N, objective, reward, reward_weight);
}

static ica_status check_lr(float lr) {
    if (!(lr >= 0.0f) || !ica_is_finite(lr))
        return ica_fail(ICA_ERR_ARGUMENT, "lr must be a finite number >= 0, got %g", (double)lr);
    return ICA_OK;
}

static ica_status adam_step(const ica_ctx *ctx, ica_model *m, float lr, float beta1, float beta2,
                            float eps) {
    ica_status st;
    if ((st = check_model(m)) != ICA_OK || (st = check_lr(lr)) != ICA_OK) return st;
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
        return ica_fail(ICA_ERR_ARGUMENT, "Adam betas must lie in [0, 1), got (%g, %g)",
                        (double)beta1, (double)beta2);
    if (!(eps > 0.0f))
        return ica_fail(ICA_ERR_ARGUMENT, "Adam eps must be > 0, got %g", (double)eps);
    size_t bad = adam_first_nonfinite(ctx, m->arena, ica_model_adam_m(m), ica_model_adam_v(m),
                                      ica_model_grads(m), m->slice, lr, beta1, beta2, eps,
                                      m->adam_steps + 1);
    if (bad < m->slice)
        return ica_fail(ICA_ERR_NUMERIC,
                        "the Adam update (lr %g, step %lld) would make %s non-finite (element "
                        "%zu of the arena): the model diverged; its parameters and Adam state "
                        "are left as they were",
                        (double)lr, (long long)m->adam_steps + 1, tensor_at(m, bad), bad);
    m->adam_steps++;
    adam_update(ctx, m->arena, ica_model_adam_m(m), ica_model_adam_v(m), ica_model_grads(m),
                m->slice, lr, beta1, beta2, eps, m->adam_steps);
    return ICA_OK;
}

ica_status ica_model_adam_update(ica_model *m, float lr, float beta1, float beta2, float eps) {
    const ica_ctx ctx = ica_ctx_begin();
    return adam_step(&ctx, m, lr, beta1, beta2, eps);
}

ica_status ica_model_step(ica_model *m, float *loss, const float *xs, const float *ys,
                          const float *rs, int B, int N, ica_objective objective, ica_reward reward,
                          float reward_weight, float lr) {
    const ica_ctx ctx = ica_ctx_begin();
    ica_status st = check_lr(lr);
    if (st != ICA_OK) return st;
    st = loss_and_grad(&ctx, m, loss, xs, ys, rs, B, N, objective, reward, reward_weight);
    if (st != ICA_OK) return st;
    return adam_step(&ctx, m, lr, 0.9f, 0.999f, 1e-8f);
}
