/* The server's compiled code, in plain C: the tree walk (tree_walk.py flattens every supported model into one
 * node table) and the numeric request-row scanner (compiled_json.py). It includes no Python header and is called
 * through ctypes: the builder needs only a C compiler and libc headers (no python3-dev), the .so does not depend on
 * the Python ABI, and ctypes releases the GIL for each call, so the micro-batcher's threads walk side by side. The
 * CPython API would save about 2 µs per call (docs/design/compiled-tree-walk.md); not worth a second build
 * dependency today.
 *
 * Built by setuptools (pyproject's ext-modules) with -O2 -ffp-contract=off -fno-math-errno. Never -ffast-math (it
 * reorders the sums) nor -march=native (the image must run on any x86-64).
 *
 * Every comparison is `x <= threshold`: tree_walk.py rewrites thresholds so that this one comparison reproduces
 * each library's own (scikit-learn compares float32 rows with float64 thresholds, XGBoost uses `x < t` in float32,
 * LightGBM and histogram gradient boosting `x <= t` in float64).
 *
 * Each tree is walked level by level over all rows at once (over several trees at once for batches under LANES
 * rows), choosing a child by index instead of by branch, so the rows' walks overlap in the CPU: after
 * LEVELS_FOR_ALL_ROWS levels only the rows still walking are kept on a list, rebuilt every LEVELS_PER_LIST levels.
 * Leaf values are added to `out` (which holds each output's base value) in tree order for every row, in the
 * accumulator type of the library (double for scikit-learn and LightGBM, float for XGBoost), so that the sums are
 * the library's own, bit for bit.
 *
 * Measured (docs/design/compiled-tree-walk.md, "Faster batches"): one level over all rows beats walking each row
 * several levels deep (a row's levels are a chain of dependent loads; the CPU overlaps independent rows only), and
 * blocks of 8 rows walked in registers lose to it too (1.8x slower on the forest); -O3 and unrolling change nothing.
 *
 * The walk trusts its table: tree_walk.build_table refuses features beyond the model's inputs, children outside
 * their tree and cycles, so that a broken model cannot make it read out of bounds or loop.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Leaf values, where each tree adds them, and each output's base value: one struct, built once (tree_walk.py) */
typedef struct {
    const void *nodes;     /* node_f32 or node_f64 */
    const void *values;    /* (leaves, width), float or double as the sums */
    const void *base;      /* (outputs,) the value every sum starts from */
    const int32_t *roots;  /* (trees,) a tree's first node */
    const int32_t *depths; /* (trees,) levels to walk */
    const int32_t *groups; /* (trees,) the first output a tree adds to */
    int32_t trees, width, n_outputs, n_features;
    int32_t divide;      /* random forests average: the sums are divided by the number of trees */
    double zero_at_most; /* inputs this close to zero (and not zero) are walked as 0.0; < 0: none (LightGBM's) */
} forest;

/* 16 and 24 bytes: the feature, the threshold, the left child (the right one is the next node: tree_walk.py numbers
 * each tree's nodes breadth first, so siblings sit side by side and the child is `left + !(x <= t)`, an add instead
 * of a second load that waits on the comparison), and `aux`: 1 when a NaN goes left. A leaf is its own left child
 * with a threshold of +inf, so that every x (a NaN too: its aux is odd) stays there; its aux is its row in `values`
 * << 1 | 1. */
typedef struct { uint32_t feature; float threshold; uint32_t left, aux; } node_f32;
typedef struct { uint32_t feature, left, aux, unused; double threshold; } node_f64;

/* LANES: walks that go on side by side at least, so that a batch of a few rows walks several trees at once (on one
 * row the walk of one tree is a chain of dependent loads; 32 chains fill the CPU). */
enum { LEVELS_FOR_ALL_ROWS = 8, LEVELS_PER_LIST = 3, LANES = 32, STACK_LANES = 256 + LANES };

#define DEFINE_CHILD(NAME, NODE, XT)                                                                          \
    /* the child by index, not by branch */                                                                   \
    static inline uint32_t NAME##_finite(const NODE *nodes, const XT *row, uint32_t n)                        \
    {                                                                                                         \
        const NODE *node = nodes + n;                                                                         \
        return node->left + !(row[node->feature] <= node->threshold);                                         \
    }                                                                                                         \
    /* a NaN fails `<=` (right) unless its node sends it left: 25 % slower, used only for rows with a NaN */  \
    static inline uint32_t NAME##_nan(const NODE *nodes, const XT *row, uint32_t n)                           \
    {                                                                                                         \
        const NODE *node = nodes + n;                                                                         \
        XT x = row[node->feature];                                                                            \
        return node->left + (!(x <= node->threshold) ^ ((x != x) & node->aux));                               \
    }

DEFINE_CHILD(child_f32, node_f32, float)
DEFINE_CHILD(child_f64, node_f64, double)

/* Trees are walked `per_group` at a time (one unless the batch has fewer than LANES rows): a lane is a (tree, row)
 * pair, at[tree_in_group * rows + row] its node. Each level advances every lane (independent walks, which the CPU
 * overlaps); after LEVELS_FOR_ALL_ROWS levels only the lanes not yet at a leaf are kept on a list, rebuilt every
 * LEVELS_PER_LIST levels. Then each row adds its leaves tree by tree, in tree order: the library's own sum. */
#define DEFINE_TREES(NAME, CHILD, NODE, XT, ACC)                                                              \
    static void NAME(const forest *f, const XT *restrict X, int64_t rows, ACC *restrict out,                  \
                     uint32_t *restrict at, uint32_t *restrict walking, int64_t *restrict offset)             \
    {                                                                                                         \
        const NODE *restrict nodes = f->nodes;                                                                \
        const ACC *restrict values = f->values;                                                               \
        const int64_t stride = f->n_features;                                                                 \
        const int32_t width = f->width, n_outputs = f->n_outputs;                                             \
        const int32_t per_group = rows >= LANES ? 1 : (int32_t)((LANES + rows - 1) / rows);                   \
        for (int64_t l = 0; l < rows * per_group; l++) /* a lane's row */                                     \
            offset[l] = (l % rows) * stride;                                                                  \
        for (int32_t first = 0; first < f->trees; first += per_group) {                                       \
            const int32_t group_trees = f->trees - first < per_group ? f->trees - first : per_group;          \
            const int64_t lanes = group_trees * rows;                                                         \
            int32_t depth = 0;                                                                                \
            for (int32_t t = 0; t < group_trees; t++)                                                         \
                depth = f->depths[first + t] > depth ? f->depths[first + t] : depth;                          \
            for (int32_t t = 0; t < group_trees; t++) { /* the first level from the root (a leaf stays) */    \
                uint32_t *lane = at + t * rows;                                                               \
                const uint32_t root = (uint32_t)f->roots[first + t];                                          \
                const XT *row = X;                                                                            \
                for (int64_t r = 0; r < rows; r++, row += stride)                                             \
                    lane[r] = CHILD(nodes, row, root);                                                        \
            }                                                                                                 \
            int32_t level = 1;                                                                                \
            for (; level < depth && level < LEVELS_FOR_ALL_ROWS; level++)                                     \
                for (int32_t t = 0; t < group_trees; t++) {                                                   \
                    uint32_t *lane = at + t * rows;                                                           \
                    const XT *row = X;                                                                        \
                    for (int64_t r = 0; r < rows; r++, row += stride)                                         \
                        lane[r] = CHILD(nodes, row, lane[r]);                                                 \
                }                                                                                             \
            int64_t count = 0;                                                                                \
            if (level < depth)                                                                                \
                for (int64_t l = 0; l < lanes; l++) {                                                         \
                    walking[count] = (uint32_t)l;                                                             \
                    count += nodes[at[l]].left != at[l];                                                      \
                }                                                                                             \
            while (level < depth && count > 0) {                                                              \
                for (int32_t step = 0; step < LEVELS_PER_LIST && level < depth; step++, level++)              \
                    for (int64_t i = 0; i < count; i++) {                                                     \
                        const uint32_t l = walking[i];                                                        \
                        at[l] = CHILD(nodes, X + offset[l], at[l]);                                           \
                    }                                                                                         \
                int64_t kept = 0;                                                                             \
                for (int64_t i = 0; i < count; i++) {                                                         \
                    const uint32_t l = walking[i];                                                            \
                    walking[kept] = l;                                                                        \
                    kept += nodes[at[l]].left != at[l];                                                       \
                }                                                                                             \
                count = kept;                                                                                 \
            }                                                                                                 \
            for (int32_t t = 0; t < group_trees; t++) {                                                       \
                const uint32_t *lane = at + t * rows;                                                         \
                ACC *sum = out + f->groups[first + t];                                                        \
                if (width == 1) /* one output (boosting, regression), or two (a two-class forest): unrolled */  \
                    for (int64_t r = 0; r < rows; r++, sum += n_outputs)                                      \
                        sum[0] += values[nodes[lane[r]].aux >> 1];                                            \
                else if (width == 2)                                                                          \
                    for (int64_t r = 0; r < rows; r++, sum += n_outputs) {                                    \
                        const ACC *leaf = values + (int64_t)(nodes[lane[r]].aux >> 1) * 2;                    \
                        sum[0] += leaf[0];                                                                    \
                        sum[1] += leaf[1];                                                                    \
                    }                                                                                         \
                else                                                                                          \
                    for (int64_t r = 0; r < rows; r++, sum += n_outputs) {                                    \
                        const ACC *leaf = values + (int64_t)(nodes[lane[r]].aux >> 1) * width;                \
                        for (int32_t o = 0; o < width; o++)                                                   \
                            sum[o] += leaf[o];                                                                \
                    }                                                                                         \
            }                                                                                                 \
        }                                                                                                     \
    }

#define DEFINE_WALK(NAME, NODE, XT, ACC, CHILD)                                                               \
    DEFINE_TREES(NAME##_finite, CHILD##_finite, NODE, XT, ACC)                                                \
    DEFINE_TREES(NAME##_nan, CHILD##_nan, NODE, XT, ACC)                                                      \
                                                                                                              \
    /* rows (C order, n_features each) -> out (rows, n_outputs); 0, or -1 when out of memory */               \
    int NAME(const forest *f, const XT *X, int64_t rows, ACC *out)                                            \
    {                                                                                                         \
        const ACC *base = f->base;                                                                            \
        for (int64_t r = 0; r < rows; r++)                                                                    \
            for (int32_t o = 0; o < f->n_outputs; o++)                                                        \
                out[r * f->n_outputs + o] = base[o];                                                          \
        if (rows <= 0)                                                                                        \
            return 0;                                                                                         \
        const int64_t lanes = rows + LANES; /* at most */                                                     \
        uint32_t stack[2 * STACK_LANES];                                                                      \
        int64_t stack_offsets[STACK_LANES];                                                                   \
        const int on_stack = lanes <= STACK_LANES;                                                            \
        uint32_t *at = on_stack ? stack : malloc(2 * sizeof(uint32_t) * (size_t)lanes);                       \
        int64_t *offset = on_stack ? stack_offsets : malloc(sizeof(int64_t) * (size_t)lanes);                 \
        if (at == NULL || offset == NULL) {                                                                   \
            if (!on_stack) {                                                                                  \
                free(at);                                                                                     \
                free(offset);                                                                                 \
            }                                                                                                 \
            return -1;                                                                                        \
        }                                                                                                     \
        int64_t nan = 0, tiny = 0;                                                                            \
        const int64_t values = rows * f->n_features;                                                          \
        for (int64_t i = 0; i < values; i++)                                                                  \
            nan |= X[i] != X[i];                                                                              \
        if (f->zero_at_most >= 0)                                                                             \
            for (int64_t i = 0; i < values; i++)                                                              \
                tiny |= (fabs(X[i]) <= f->zero_at_most) & (X[i] != 0);                                        \
        XT *zeroed = tiny ? malloc(sizeof(XT) * (size_t)values) : NULL;                                       \
        if (zeroed != NULL)                                                                                   \
            for (int64_t i = 0; i < values; i++)                                                              \
                zeroed[i] = fabs(X[i]) <= f->zero_at_most ? 0 : X[i];                                         \
        const XT *walked = zeroed != NULL ? zeroed : X;                                                       \
        if (!tiny || zeroed != NULL)                                                                          \
            (nan ? NAME##_nan : NAME##_finite)(f, walked, rows, out, at, at + lanes, offset);                 \
        free(zeroed);                                                                                         \
        if (!on_stack) {                                                                                      \
            free(at);                                                                                         \
            free(offset);                                                                                     \
        }                                                                                                     \
        if (tiny && zeroed == NULL)                                                                           \
            return -1;                                                                                        \
        if (f->divide > 1)                                                                                    \
            for (int64_t i = 0; i < rows * f->n_outputs; i++)                                                 \
                out[i] /= f->divide;                                                                          \
        return 0;                                                                                             \
    }

/* scikit-learn's trees: float32 rows, float64 sums */
DEFINE_WALK(walk_f32_f64, node_f32, float, double, child_f32)
/* XGBoost: float32 rows, float32 sums */
DEFINE_WALK(walk_f32_f32, node_f32, float, float, child_f32)
/* LightGBM and histogram gradient boosting: float64 rows and sums */
DEFINE_WALK(walk_f64_f64, node_f64, double, double, child_f64)

/* The libraries' links, with the C library's exp and log as theirs use (numpy's own differ in the last bit). */
float logit_f32(float p) /* XGBoost's ProbToMargin for logistic objectives: base_score as a margin */
{
    return -logf(1.0f / p - 1.0f);
}

/* The binary links write both columns, (1 - p, p), as the XGBoost and LightGBM wrappers' predict_proba (1 - p in
 * the type of p): one call instead of a link and numpy's stacking, which cost more than the walk on one row. */
void sigmoid_f32(const float *x, int64_t n, float *out) /* XGBoost binary:logistic */
{
    for (int64_t i = 0; i < n; i++) {
        const float p = 1.0f / (1.0f + expf(-x[i]));
        out[2 * i] = 1.0f - p;
        out[2 * i + 1] = p;
    }
}

void sigmoid_f64(const double *x, int64_t n, double *out, double scale) /* LightGBM binary (sigmoid `scale`) */
{
    for (int64_t i = 0; i < n; i++) {
        const double p = 1.0 / (1.0 + exp(-scale * x[i]));
        out[2 * i] = 1.0 - p;
        out[2 * i + 1] = p;
    }
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

/* --- numeric request rows (compiled_json.py) ---------------------------------------------------------------------
 * `{"instances": [[...], ...]}`, `{"features": [...]}` or `{"features": [[...], ...]}` read in one pass, the numbers
 * written to `out`. A number is decoded only when the result is surely the correctly rounded double orjson gives:
 * its digits, read as one integer m, are at most 2^53 and its decimal exponent e within ±22, so m and 10^|e| are
 * exact doubles and m × 10^e (or m / 10^-e) is one correctly rounded operation (Clinger's fast path). Anything else
 * gives up (SCAN_GAVE_UP), and the caller hands the body to orjson and the usual validation. */

enum { SCAN_GAVE_UP = -1, SCAN_FLAT = 0, SCAN_NESTED = 1 };
#define MAX_EXACT_MANTISSA (UINT64_C(1) << 53)
#define MAX_EXACT_POWER 22

static const double POWERS_OF_TEN[MAX_EXACT_POWER + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

typedef struct {
    const uint8_t *text;
    int64_t size;
    double *out;
    int64_t capacity; /* doubles `out` holds */
} scanner;

static inline int is_space(uint8_t byte) { return byte == ' ' || byte == '\n' || byte == '\r' || byte == '\t'; }

static inline int64_t skip_space(const scanner *s, int64_t i)
{
    while (i < s->size && is_space(s->text[i]))
        i++;
    return i;
}

static inline int is_digit(const scanner *s, int64_t i) { return i < s->size && s->text[i] >= '0' && s->text[i] <= '9'; }

/* A number at i written to out[count]: the index after it, or -1 to give up. */
static int64_t scan_number(const scanner *s, int64_t i, int64_t count)
{
    if (count >= s->capacity)
        return -1;
    const int negative = s->text[i] == '-';
    if (negative)
        i++;
    if (!is_digit(s, i))
        return -1;
    uint64_t mantissa = 0;
    if (s->text[i] == '0') {
        i++;
        if (is_digit(s, i)) /* a leading zero: not JSON */
            return -1;
    } else {
        while (is_digit(s, i)) {
            mantissa = mantissa * 10 + (uint64_t)(s->text[i] - '0');
            if (mantissa > MAX_EXACT_MANTISSA)
                return -1;
            i++;
        }
    }
    int integer = 1;
    int64_t exponent = 0;
    if (i < s->size && s->text[i] == '.') {
        integer = 0;
        i++;
        if (!is_digit(s, i))
            return -1;
        while (is_digit(s, i)) {
            mantissa = mantissa * 10 + (uint64_t)(s->text[i] - '0');
            if (mantissa > MAX_EXACT_MANTISSA)
                return -1;
            exponent--;
            i++;
        }
    }
    if (i < s->size && (s->text[i] == 'e' || s->text[i] == 'E')) {
        integer = 0;
        i++;
        int64_t sign = 1;
        if (i < s->size && (s->text[i] == '+' || s->text[i] == '-')) {
            sign = s->text[i] == '+' ? 1 : -1;
            i++;
        }
        if (!is_digit(s, i))
            return -1;
        int64_t written = 0;
        while (is_digit(s, i)) {
            written = written * 10 + (s->text[i] - '0');
            if (written > 10000)
                written = 10000;
            i++;
        }
        exponent += sign * written;
    }
    double value;
    if (mantissa == 0)
        value = 0.0;
    else if (exponent > MAX_EXACT_POWER || exponent < -MAX_EXACT_POWER)
        return -1;
    else if (exponent >= 0)
        value = (double)mantissa * POWERS_OF_TEN[exponent];
    else
        value = (double)mantissa / POWERS_OF_TEN[-exponent];
    /* JSON's integer -0 is the integer 0: +0.0, as orjson and numpy make it */
    s->out[count] = negative && !(integer && mantissa == 0) ? -value : value;
    return i;
}

/* After a '[': numbers up to the matching ']'. The index after ']' (*read: how many), or -1. */
static int64_t scan_numbers(const scanner *s, int64_t i, int64_t count, int64_t *read)
{
    const int64_t start = count;
    for (;;) {
        i = skip_space(s, i);
        if (i >= s->size)
            return -1;
        i = scan_number(s, i, count);
        if (i < 0)
            return -1;
        count++;
        i = skip_space(s, i);
        if (i >= s->size)
            return -1;
        if (s->text[i] == ']') {
            *read = count - start;
            return i + 1;
        }
        if (s->text[i] != ',')
            return -1;
        i++;
    }
}

/* `"key"` at i (just after the opening quote): the index after the closing quote, or -1 */
static int64_t scan_key(const scanner *s, int64_t i, const char *key)
{
    for (; *key; key++, i++)
        if (i >= s->size || s->text[i] != (uint8_t)*key)
            return -1;
    return i < s->size && s->text[i] == '"' ? i + 1 : -1;
}

/* text (size bytes) -> out (capacity doubles); shape = {key index (0 instances, 1 features), rows, columns}.
 * Returns SCAN_FLAT, SCAN_NESTED or SCAN_GAVE_UP. */
int scan_rows(const uint8_t *text, int64_t size, double *out, int64_t capacity, int64_t *shape)
{
    const scanner scan = {text, size, out, capacity}, *s = &scan;
    int64_t i = skip_space(s, 0), key, at, rows, columns, read = 0;
    int outcome;
    if (i >= size || text[i] != '{')
        return SCAN_GAVE_UP;
    i = skip_space(s, i + 1);
    if (i >= size || text[i] != '"')
        return SCAN_GAVE_UP;
    if ((at = scan_key(s, i + 1, "instances")) >= 0)
        key = 0;
    else if ((at = scan_key(s, i + 1, "features")) >= 0)
        key = 1;
    else
        return SCAN_GAVE_UP;
    i = skip_space(s, at);
    if (i >= size || text[i] != ':')
        return SCAN_GAVE_UP;
    i = skip_space(s, i + 1);
    if (i >= size || text[i] != '[')
        return SCAN_GAVE_UP;
    i = skip_space(s, i + 1);
    if (i >= size)
        return SCAN_GAVE_UP;
    if (text[i] != '[') {
        i = scan_numbers(s, i, 0, &columns);
        rows = 1;
        outcome = SCAN_FLAT;
    } else {
        rows = columns = 0;
        outcome = SCAN_NESTED;
        for (;;) {
            i = scan_numbers(s, i + 1, rows * columns, &read);
            if (i < 0 || (rows > 0 && read != columns))
                return SCAN_GAVE_UP;
            rows++;
            columns = read;
            i = skip_space(s, i);
            if (i >= size)
                return SCAN_GAVE_UP;
            if (text[i] == ']') { /* the last row */
                i++;
                break;
            }
            if (text[i] != ',')
                return SCAN_GAVE_UP;
            i = skip_space(s, i + 1);
            if (i >= size || text[i] != '[')
                return SCAN_GAVE_UP;
        }
    }
    if (i < 0)
        return SCAN_GAVE_UP;
    i = skip_space(s, i);
    if (i >= size || text[i] != '}')
        return SCAN_GAVE_UP;
    if (skip_space(s, i + 1) != size)
        return SCAN_GAVE_UP;
    shape[0] = key;
    shape[1] = rows;
    shape[2] = columns;
    return outcome;
}
