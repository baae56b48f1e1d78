"""A compiled forest kernel: every tree in one flat node table, walked by numba-compiled code.

scikit-learn walks a forest one tree at a time, each walk a branchy loop per row: on a 100-row batch of a
deep forest most of the time goes to mispredicted branches (and, for small batches, to per-tree Python
overhead). This kernel walks each tree level by level over all rows at once, choosing a child by index
instead of by branch, so the rows' walks overlap in the CPU; a leaf points to itself. Rows reach leaves at
very different depths (in the benchmark's forest: 10 on average, 18 for the deepest), so after the first
levels only the rows still walking are kept on a list, rebuilt every few levels. About 6x faster than the
tree-by-tree numpy path on 100 rows (150 µs for 100 trees) and 25x on one row (10 µs).

The arithmetic is scikit-learn's, so the results are bit-identical (kernels.py still checks them on probe
rows before using the kernel):
- rows are cast to float32 as the trees do, and compared with `x <= threshold` (rows holding NaN, which
  only a pipeline's transform can produce here, are left to scikit-learn's own walk: see kernels.py);
- thresholds are float64 in scikit-learn but x is float32, so `x <= t` equals `x <= t32` for t32 the largest
  float32 not above t: the table stores that, and the node fits in 16 bytes;
- leaf values are summed in tree order in float64 and divided by the number of trees at the end.

numba is imported only when compiled kernels are on (`--compiled-kernels`) and a forest is loaded; the
kernel is compiled once, in the gunicorn master before it forks, so workers share the machine code.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

# A node is 4 int32 in one flat table: the split feature, the threshold's float32 bits, and the left and
# right child as offsets into the table (RIGHT = LEFT + 1: the walk adds the comparison's outcome). A leaf's
# children are itself, so its comparison does not matter: its THRESHOLD field holds its row in `values`
# instead, which keeps that table to the leaves (less to hold in cache).
FEATURE, THRESHOLD, LEFT, RIGHT = 0, 1, 2, 3
NODE = 4
# Levels every row walks before the walk keeps a list of the rows not yet at a leaf, and how often that
# list is rebuilt: tuned on the benchmark's forest (leaves at depth 10 on average, trees 18 deep on average
# and 28 at most); rebuilding the list every level costs more than it saves.
LEVELS_FOR_ALL_ROWS = 8
LEVELS_PER_LIST = 3


@dataclass(frozen=True)
class ForestTable:
    nodes: np.ndarray  # (nodes * NODE,) int32, fields above
    floats: np.ndarray  # float32 view of nodes: floats[offset + THRESHOLD] is a threshold
    values: np.ndarray  # (leaves, outputs) float64: a leaf's class fractions or regression value
    roots: np.ndarray  # (trees,) int32 offsets
    depths: np.ndarray  # (trees,) int32: levels to walk


def float32_at_most(thresholds: np.ndarray) -> np.ndarray:
    """For each float64 t, the largest float32 that is <= t (so `x <= t` ⇔ `x <= result` for float32 x)."""
    with np.errstate(over="ignore"):  # beyond float32's range: inf, then stepped down to the largest float32
        rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def build_table(trees: list[Any], leaf_values: Callable[[Any], np.ndarray]) -> ForestTable:
    counts = [tree.node_count for tree in trees]
    firsts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(firsts[-1])
    if total * NODE >= np.iinfo(np.int32).max:
        raise ValueError("forest too large for a 32-bit node table")
    table = np.zeros((total, NODE), dtype=np.int32)
    floats = table.view(np.float32)
    leaves = [tree.children_left == -1 for tree in trees]
    values = np.concatenate([leaf_values(tree)[leaf] for tree, leaf in zip(trees, leaves, strict=True)]).astype(
        np.float64
    )
    leaf_rows = np.cumsum([0] + [int(leaf.sum()) for leaf in leaves])
    for tree, leaf, first, count, leaf_row in zip(trees, leaves, firsts[:-1], counts, leaf_rows[:-1], strict=True):
        end = first + count
        own = np.arange(first, end, dtype=np.int64)
        table[first:end, FEATURE] = np.where(leaf, 0, tree.feature)
        floats[first:end, THRESHOLD] = float32_at_most(tree.threshold)
        table[first:end, THRESHOLD][leaf] = leaf_row + np.arange(int(leaf.sum()))  # replaces the leaves' thresholds
        table[first:end, LEFT] = NODE * np.where(leaf, own, tree.children_left + first)
        table[first:end, RIGHT] = NODE * np.where(leaf, own, tree.children_right + first)
    nodes = table.reshape(-1)
    roots = (NODE * firsts[:-1]).astype(np.int32)
    depths = np.array([tree.max_depth for tree in trees], dtype=np.int32)
    return ForestTable(nodes, nodes.view(np.float32), values, roots, depths)


@cache
def compiled_walk() -> Callable[..., None]:
    import numba

    # Offsets and indexes are unsigned on purpose: numba checks every signed index for a negative
    # (wrap-around) value; with signed ones the walk takes twice as long (306 vs 147 µs for 100 rows).
    @numba.njit(inline="always")
    def child(nodes, floats, flat, node, row_start):  # pragma: no cover (machine code)
        x = flat[row_start + np.uint32(nodes[node + np.uint32(FEATURE)])]
        right = np.uint32(not (x <= floats[node + np.uint32(THRESHOLD)]))
        return np.uint32(nodes[node + np.uint32(LEFT) + right])

    @numba.njit(inline="always")
    def relist(nodes, at, walking, count):  # pragma: no cover (machine code)
        kept = 0
        for i in range(count):
            row = walking[i]
            node = at[row]
            walking[kept] = row
            kept += np.uint32(nodes[node + np.uint32(LEFT)]) != node
        return kept

    signature = (
        "void(float32[:, ::1], int32[::1], float32[::1], float64[:, ::1], int32[::1], int32[::1], float64[:, ::1])"
    )

    @numba.njit(signature, nogil=True, boundscheck=False)
    def walk(X, nodes, floats, values, roots, depths, out):  # pragma: no cover (machine code)
        rows, width = X.shape[0], values.shape[1]
        flat = X.reshape(-1)
        stride = np.uint32(X.shape[1])
        at = np.empty(rows, dtype=np.uint32)  # each row's node in the current tree
        walking = np.empty(rows, dtype=np.uint32)  # the rows not at a leaf yet
        out[:, :] = 0.0
        for tree in range(roots.shape[0]):
            depth = depths[tree]
            at[:] = np.uint32(roots[tree])
            level = 0
            while level < min(depth, LEVELS_FOR_ALL_ROWS):
                for row in range(rows):
                    at[row] = child(nodes, floats, flat, at[row], np.uint32(row) * stride)
                level += 1
            if level < depth:
                for row in range(rows):
                    walking[row] = row
                count = relist(nodes, at, walking, rows)
                while level < depth and count > 0:
                    for _ in range(min(LEVELS_PER_LIST, depth - level)):
                        for i in range(count):
                            row = walking[i]
                            at[row] = child(nodes, floats, flat, at[row], row * stride)
                    level += LEVELS_PER_LIST
                    count = relist(nodes, at, walking, count)
            for row in range(rows):
                leaf = np.uint32(nodes[at[row] + np.uint32(THRESHOLD)])
                for output in range(width):
                    out[row, output] += values[leaf, output]
        for row in range(rows):
            for output in range(width):
                out[row, output] /= roots.shape[0]

    return walk


def table_predictor(table: ForestTable) -> Callable[[np.ndarray], np.ndarray]:
    """float32 C-ordered rows without NaN → (rows, outputs) float64 averages over the trees."""
    walk = compiled_walk()
    nodes, floats, values, roots, depths = table.nodes, table.floats, table.values, table.roots, table.depths

    def predict(X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], values.shape[1]), dtype=np.float64)
        walk(X, nodes, floats, values, roots, depths, out)
        return out

    return predict
