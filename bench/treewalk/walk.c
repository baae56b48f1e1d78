/* A forest walk in plain C (no Python headers: called through ctypes), for every tree model the server
 * flattens into one node table (see forest.py).
 *
 * Every comparison is `x <= threshold`: forest.py rewrites thresholds so that this one
 * comparison reproduces each library's own (scikit-learn compares float32 rows with float64 thresholds,
 * XGBoost uses `x < t` in float32, LightGBM and histogram gradient boosting `x <= t` in float64).
 *
 * Each tree is walked level by level over all rows at once, choosing a child by index instead of by branch,
 * so the rows' walks overlap in the CPU (compiled_forest.py's walk, ported): after LEVELS_FOR_ALL_ROWS
 * levels only the rows still walking are kept on a list, rebuilt every LEVELS_PER_LIST levels.
 * Leaf values are added to `out` (which holds each output's base value) in tree order, in the accumulator
 * type of the library (double for scikit-learn and LightGBM, float for XGBoost), so that the sums are the
 * library's own, bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Leaf values, where each tree adds them, and each output's base value: one struct, built once (forest.py) */
typedef struct {
    const void *nodes;     /* node_f32 or node_f64 */
    const void *values;    /* (leaves, width), float or double as the sums */
    const void *base;      /* (outputs,) the value every sum starts from */
    const int32_t *roots;  /* (trees,) a tree's first node */
    const int32_t *depths; /* (trees,) levels to walk */
    const int32_t *groups; /* (trees,) the first output a tree adds to */
    int32_t trees, width, n_outputs, n_features;
    int32_t divide; /* random forests average: the sums are divided by the number of trees */
} forest;

/* 16 and 24 bytes: the feature (its top bit set when a NaN goes left), the threshold, the two children. A
 * leaf's children are itself and its threshold field holds its row in `values` instead. */
#define NAN_LEFT 0x80000000u
typedef struct { uint32_t feature; float threshold; uint32_t child[2]; } node_f32;
typedef struct { uint32_t feature; uint32_t child[2]; uint32_t unused; double threshold; } node_f64;

enum { LEVELS_FOR_ALL_ROWS = 8, LEVELS_PER_LIST = 3, STACK_ROWS = 256 };

#define DEFINE_CHILD(NAME, NODE, XT)                                                                          \
    /* the child by index, not by branch */                                                                   \
    static inline uint32_t NAME##_finite(const NODE *nodes, const XT *row, uint32_t n)                        \
    {                                                                                                         \
        const NODE *node = nodes + n;                                                                         \
        return node->child[!(row[node->feature & ~NAN_LEFT] <= node->threshold)];                             \
    }                                                                                                         \
    /* a NaN fails `<=` (right) unless its node sends it left: 25 % slower, used only for rows with a NaN */  \
    static inline uint32_t NAME##_nan(const NODE *nodes, const XT *row, uint32_t n)                           \
    {                                                                                                         \
        const NODE *node = nodes + n;                                                                         \
        XT x = row[node->feature & ~NAN_LEFT];                                                                \
        return node->child[!(x <= node->threshold) ^ ((x != x) & (node->feature >> 31))];                     \
    }

DEFINE_CHILD(child_f32, node_f32, float)
DEFINE_CHILD(child_f64, node_f64, double)

#define DEFINE_TREES(NAME, CHILD, NODE, XT, ACC, LEAF_ROW)                                                    \
    static void NAME(const forest *f, const XT *X, int64_t rows, ACC *out, uint32_t *at, uint32_t *walking)   \
    {                                                                                                         \
        const NODE *nodes = f->nodes;                                                                         \
        const int64_t stride = f->n_features;                                                                 \
        for (int32_t tree = 0; tree < f->trees; tree++) {                                                     \
            const int32_t depth = f->depths[tree];                                                            \
            int32_t level = 0;                                                                                \
            for (int64_t r = 0; r < rows; r++)                                                                \
                at[r] = (uint32_t)f->roots[tree];                                                             \
            for (; level < depth && level < LEVELS_FOR_ALL_ROWS; level++)                                     \
                for (int64_t r = 0; r < rows; r++)                                                            \
                    at[r] = CHILD(nodes, X + r * stride, at[r]);                                              \
            if (level < depth) {                                                                              \
                int64_t count = 0;                                                                            \
                for (int64_t r = 0; r < rows; r++) {                                                          \
                    walking[count] = (uint32_t)r;                                                             \
                    count += nodes[at[r]].child[0] != at[r];                                                  \
                }                                                                                             \
                while (level < depth && count > 0) {                                                          \
                    for (int32_t step = 0; step < LEVELS_PER_LIST && level < depth; step++, level++)          \
                        for (int64_t i = 0; i < count; i++) {                                                 \
                            uint32_t r = walking[i];                                                          \
                            at[r] = CHILD(nodes, X + (int64_t)r * stride, at[r]);                             \
                        }                                                                                     \
                    int64_t kept = 0;                                                                         \
                    for (int64_t i = 0; i < count; i++) {                                                     \
                        uint32_t r = walking[i];                                                              \
                        walking[kept] = r;                                                                    \
                        kept += nodes[at[r]].child[0] != at[r];                                               \
                    }                                                                                         \
                    count = kept;                                                                             \
                }                                                                                             \
            }                                                                                                 \
            const ACC *values = f->values;                                                                    \
            const int32_t group = f->groups[tree], width = f->width;                                          \
            for (int64_t r = 0; r < rows; r++) {                                                              \
                const ACC *leaf = values + (int64_t)LEAF_ROW(nodes[at[r]]) * width;                           \
                ACC *sum = out + r * f->n_outputs + group;                                                    \
                for (int32_t o = 0; o < width; o++)                                                           \
                    sum[o] += leaf[o];                                                                        \
            }                                                                                                 \
        }                                                                                                     \
    }

#define DEFINE_WALK(NAME, NODE, XT, ACC, LEAF_ROW, CHILD)                                                     \
    DEFINE_TREES(NAME##_finite, CHILD##_finite, NODE, XT, ACC, LEAF_ROW)                                      \
    DEFINE_TREES(NAME##_nan, CHILD##_nan, NODE, XT, ACC, LEAF_ROW)                                            \
                                                                                                              \
    /* rows (C order, n_features each) -> out (rows, n_outputs); 0, or -1 when out of memory */               \
    int NAME(const forest *f, const XT *X, int64_t rows, ACC *out)                                            \
    {                                                                                                         \
        const ACC *base = f->base;                                                                            \
        for (int64_t r = 0; r < rows; r++)                                                                    \
            for (int32_t o = 0; o < f->n_outputs; o++)                                                        \
                out[r * f->n_outputs + o] = base[o];                                                          \
        uint32_t stack[2 * STACK_ROWS];                                                                       \
        uint32_t *at = rows <= STACK_ROWS ? stack : malloc(2 * sizeof(uint32_t) * (size_t)rows);              \
        if (at == NULL)                                                                                       \
            return -1;                                                                                        \
        int64_t nan = 0;                                                                                      \
        for (int64_t i = 0; i < rows * f->n_features; i++)                                                    \
            nan |= X[i] != X[i];                                                                              \
        (nan ? NAME##_nan : NAME##_finite)(f, X, rows, out, at, at + rows);                                   \
        if (at != stack)                                                                                      \
            free(at);                                                                                         \
        if (f->divide > 1)                                                                                    \
            for (int64_t i = 0; i < rows * f->n_outputs; i++)                                                 \
                out[i] /= f->divide;                                                                          \
        return 0;                                                                                             \
    }

static inline uint32_t leaf_row_f32(node_f32 node)
{
    union { float f; uint32_t u; } bits = {node.threshold};
    return bits.u;
}

static inline uint32_t leaf_row_f64(node_f64 node)
{
    union { double f; uint64_t u; } bits = {node.threshold};
    return (uint32_t)bits.u;
}

/* scikit-learn's trees: float32 rows, float64 sums */
DEFINE_WALK(walk_f32_f64, node_f32, float, double, leaf_row_f32, child_f32)
/* XGBoost: float32 rows, float32 sums */
DEFINE_WALK(walk_f32_f32, node_f32, float, float, leaf_row_f32, child_f32)
/* LightGBM and histogram gradient boosting: float64 rows and sums */
DEFINE_WALK(walk_f64_f64, node_f64, double, double, leaf_row_f64, child_f64)

/* The libraries' links, with the C library's exp as theirs use (numpy's own exp differs in the last bit). */
void sigmoid_f32(float *x, int64_t n) /* XGBoost binary:logistic */
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

void sigmoid_f64(double *x, int64_t n, double scale) /* LightGBM binary (sigmoid parameter `scale`) */
{
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0 / (1.0 + exp(-scale * x[i]));
}

#define DEFINE_SOFTMAX(NAME, T, SUM, EXP)                                                                     \
    void NAME(T *x, int64_t rows, int32_t classes)                                                            \
    {                                                                                                         \
        for (int64_t r = 0; r < rows; r++) {                                                                  \
            T *row = x + r * classes;                                                                         \
            T top = row[0];                                                                                   \
            for (int32_t c = 1; c < classes; c++)                                                             \
                top = row[c] > top ? row[c] : top;                                                            \
            SUM sum = 0;                                                                                      \
            for (int32_t c = 0; c < classes; c++) {                                                           \
                row[c] = EXP(row[c] - top);                                                                   \
                sum += row[c];                                                                                \
            }                                                                                                 \
            for (int32_t c = 0; c < classes; c++)                                                             \
                row[c] /= (T)sum;                                                                             \
        }                                                                                                     \
    }

DEFINE_SOFTMAX(softmax_f32, float, double, expf) /* XGBoost multi:softprob */
DEFINE_SOFTMAX(softmax_f64, double, double, exp) /* LightGBM multiclass */
