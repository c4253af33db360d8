"""Owen values over a partition tree: shap's ``PartitionExplainer.owen`` with its per-node
work compiled (imports numba and shap: import lazily).

shap expands the tree nodes in the order of a priority queue (the largest change of the
explained outputs first, ties broken by ``np.random.randn``) and spends ``max_evals`` model
evaluations on them. :func:`owen_values` follows the same algorithm step by step — the same
nodes in the same order, the same masks in the same batches, the same random draws and the
same floating-point operations in the same order — so its values equal shap's bit for bit
(``tests/unit/explain/test_owen.py``). What changes is the bookkeeping between two model
calls: shap runs Python per queued node (a locking ``queue.PriorityQueue``, a mask copy and
a numpy reduction each), here one compiled call builds a batch and one queues its children.

A queue entry of shap is (m00, f00, f11, node, weight): the coalition outside the node, the
model outputs without and with the node's features, and the node's share of the credit.
Every mask evaluated here is a row of one table and its outputs the same row of another, and
f00 is always the output of m00, so an entry is (low row, high row, node, weight): its
coalition and outputs are row ``low``, its outputs with the node's features are row ``high``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numba import njit

from xaibench.errors import XaibenchError


class PartitionTree:
    """A scipy-style clustering of M features (rows: left child, right child, distance, ...;
    node ids < M are the features) with the features under every node (CSR arrays)."""

    def __init__(self, clustering: np.ndarray) -> None:
        from shap.utils._masked_model import make_masks

        clustering = np.asarray(clustering)
        if clustering.ndim != 2 or clustering.shape[1] < 4:
            raise XaibenchError(f"a partition tree needs one row (left, right, distance, size) "
                                f"per merge, got an array of shape {clustering.shape}")
        self.clustering = clustering
        self.n_features = len(clustering) + 1
        self.n_nodes = 2 * len(clustering) + 1
        m = self.n_features
        self.left = np.full(self.n_nodes, -1, dtype=np.int64)
        self.right = np.full(self.n_nodes, -1, dtype=np.int64)
        self.left[m:] = clustering[:, 0].astype(np.int64)
        self.right[m:] = clustering[:, 1].astype(np.int64)
        #: nodes split into their two children (shap stops at features and negative distances)
        self.splits = np.zeros(self.n_nodes, dtype=np.bool_)
        self.splits[m:] = clustering[:, 2] >= 0
        if len(clustering):
            matrix = make_masks(clustering)
            self.indptr = matrix.indptr.astype(np.int64)
            self.indices = matrix.indices.astype(np.int64)
        else:
            self.indptr, self.indices = np.array([0, 1]), np.array([0])


def owen_values(evaluate: Callable[[np.ndarray], np.ndarray], tree: PartitionTree,
                f00: np.ndarray, f11: np.ndarray, max_evals: int, batch_size: int
                ) -> np.ndarray:
    """The (M, K) Owen values of the K outputs that ``evaluate`` returns.

    ``evaluate`` maps (B, M) keep masks to (B, K) float64 outputs; ``f00`` and ``f11`` are
    the outputs with every feature hidden and kept. At most ``max_evals`` masks are
    evaluated, at most ``batch_size`` (+1 when odd) per call; what is left on unexpanded
    nodes is spread over their features in proportion to their sizes. Draws from numpy's
    global RNG exactly as shap does (seed it for reproducible values).
    """
    from shap.explainers._partition import lower_credit

    room_per_batch = -(-batch_size // 2)  # nodes per batch: two masks each
    rows = _Table(np.zeros((2, tree.n_features), dtype=np.bool_), np.stack([f00, f11]))
    rows.masks[1] = True
    entries = _Entries(root=tree.n_nodes - 1)
    settled = np.empty(0, dtype=np.int64)
    n_settled, eval_count = 0, 0
    while entries.queued:
        if eval_count >= max_evals:
            settled = _grown(settled, n_settled + entries.queued)
            n_settled = _drain(entries.heap, entries.queued, entries.priority, entries.tie,
                               settled, n_settled)
            entries.queued = 0
            break
        room = min(room_per_batch, -(-(max_evals - eval_count) // 2))
        rows.reserve(2 * room)
        entries.reserve(4 * room)
        settled = _grown(settled, n_settled + entries.queued)
        batch = np.empty(room, dtype=np.int64)
        first = rows.size
        entries.queued, n_settled, n_batch = _next_batch(
            entries.heap, entries.queued, entries.priority, entries.tie, entries.node,
            entries.low, tree.splits, tree.left, tree.right, tree.indptr, tree.indices,
            rows.masks, first, room, settled, n_settled, batch)
        if n_batch == 0:
            continue
        rows.outputs[first:first + 2 * n_batch] = evaluate(rows.masks[first:first + 2 * n_batch])
        rows.size += 2 * n_batch
        eval_count += 2 * n_batch
        ties = np.random.randn(4 * n_batch)  # shap's tie-breaks, one per queued child
        entries.queued, entries.size = _queue_children(
            entries.heap, entries.queued, entries.size, entries.priority, entries.tie,
            entries.node, entries.weight, entries.low, entries.high, batch[:n_batch], first,
            rows.outputs, ties, tree.left, tree.right)
    dvalues = np.zeros((tree.n_nodes, len(f00)))
    _settle(dvalues, settled[:n_settled], entries.node, entries.weight, entries.low,
            entries.high, rows.outputs)
    lower_credit(tree.n_nodes - 1, 0, tree.n_features, dvalues, tree.clustering)
    return dvalues[:tree.n_features]


def _grown(array: np.ndarray, needed: int) -> np.ndarray:
    """``array`` if it holds ``needed`` rows, else a copy with at least twice the rows."""
    if needed <= len(array):
        return array
    grown = np.zeros((max(needed, 2 * len(array)), *array.shape[1:]), dtype=array.dtype)
    grown[:len(array)] = array
    return grown


class _Table:
    """The evaluated masks and their outputs, row by row (row 0: all hidden, 1: all kept)."""

    def __init__(self, masks: np.ndarray, outputs: np.ndarray) -> None:
        self.masks, self.outputs, self.size = masks, outputs, len(masks)

    def reserve(self, n: int) -> None:
        self.masks = _grown(self.masks, self.size + n)
        self.outputs = _grown(self.outputs, self.size + n)


class _Entries:
    """Every queue entry ever made (entry 0: the root, with weight 1) and the heap of the
    queued ones (``heap[:queued]``)."""

    def __init__(self, root: int) -> None:
        self.low = np.zeros(1, dtype=np.int64)
        self.high = np.ones(1, dtype=np.int64)
        self.node = np.full(1, root, dtype=np.int64)
        self.weight = np.ones(1)
        self.priority, self.tie = np.zeros(1), np.zeros(1)
        self.heap = np.zeros(1, dtype=np.int64)
        self.size = self.queued = 1

    def reserve(self, n: int) -> None:
        needed = self.size + n
        for name in ("low", "high", "node", "weight", "priority", "tie", "heap"):
            setattr(self, name, _grown(getattr(self, name), needed))


@njit(cache=True)
def _before(a: int, b: int, priority: np.ndarray, tie: np.ndarray) -> bool:
    """Entry ``a`` leaves shap's queue before ``b``: tuples (priority, tie) compared in turn
    (the entry id decides the impossible exact tie; shap would fail comparing its arrays)."""
    if priority[a] != priority[b]:
        return priority[a] < priority[b]
    if tie[a] != tie[b]:
        return tie[a] < tie[b]
    return a < b


@njit(cache=True)
def _push(heap: np.ndarray, n: int, entry: int, priority: np.ndarray, tie: np.ndarray) -> int:
    i = n
    heap[i] = entry
    while i > 0:
        parent = (i - 1) // 2
        if not _before(heap[i], heap[parent], priority, tie):
            break
        heap[i], heap[parent] = heap[parent], heap[i]
        i = parent
    return n + 1


@njit(cache=True)
def _pop(heap: np.ndarray, n: int, priority: np.ndarray, tie: np.ndarray) -> int:
    """Remove the first entry from ``heap[:n]`` and return it (the heap now has n - 1)."""
    top = heap[0]
    n -= 1
    heap[0] = heap[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and _before(heap[child + 1], heap[child], priority, tie):
            child += 1
        if not _before(heap[child], heap[i], priority, tie):
            break
        heap[i], heap[child] = heap[child], heap[i]
        i = child
    return top


@njit(cache=True)
def _drain(heap: np.ndarray, n: int, priority: np.ndarray, tie: np.ndarray,
           settled: np.ndarray, n_settled: int) -> int:
    """Move the queued entries, in queue order, to ``settled``."""
    while n > 0:
        settled[n_settled] = _pop(heap, n, priority, tie)
        n -= 1
        n_settled += 1
    return n_settled


@njit(cache=True)
def _add_features(masks: np.ndarray, row: int, node: int, indptr: np.ndarray,
                  indices: np.ndarray) -> None:
    for k in range(indptr[node], indptr[node + 1]):
        masks[row, indices[k]] = True


@njit(cache=True)
def _next_batch(heap: np.ndarray, n: int, priority: np.ndarray, tie: np.ndarray,
                node: np.ndarray, low: np.ndarray, splits: np.ndarray, left: np.ndarray,
                right: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                masks: np.ndarray, first: int, room: int, settled: np.ndarray, n_settled: int,
                batch: np.ndarray) -> tuple[int, int, int]:
    """Pop entries as shap does until ``room`` split nodes are in the batch (entries that do
    not split settle on the way); write their masks (left child, right child added to the
    coalition) to rows ``first``, ``first + 1``, ...; returns (queued, settled, batch size)."""
    n_batch = 0
    while n > 0 and n_batch < room:
        entry = _pop(heap, n, priority, tie)
        n -= 1
        if not splits[node[entry]]:
            settled[n_settled] = entry
            n_settled += 1
            continue
        batch[n_batch] = entry
        row = first + 2 * n_batch
        masks[row] = masks[low[entry]]
        masks[row + 1] = masks[low[entry]]
        _add_features(masks, row, left[node[entry]], indptr, indices)
        _add_features(masks, row + 1, right[node[entry]], indptr, indices)
        n_batch += 1
    return n, n_settled, n_batch


@njit(cache=True)
def _queue_children(heap: np.ndarray, n: int, size: int, priority: np.ndarray,
                    tie: np.ndarray, node: np.ndarray, weight: np.ndarray, low: np.ndarray,
                    high: np.ndarray, batch: np.ndarray, first: int, outputs: np.ndarray,
                    ties: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[int, int]:
    """Queue the four children of every batch entry in shap's order: the left and the right
    child with the coalition outside the parent hidden, then with it kept; each with half the
    parent's weight and priority -max|f_high - f_low| * weight. Returns (queued, entries)."""
    for i in range(len(batch)):
        parent = batch[i]
        half = weight[parent] / 2
        row10, row01 = first + 2 * i, first + 2 * i + 1
        children = ((low[parent], row10, left[node[parent]]),
                    (low[parent], row01, right[node[parent]]),
                    (row01, high[parent], left[node[parent]]),
                    (row10, high[parent], right[node[parent]]))
        for j in range(4):
            lo, hi, child = children[j]
            change = 0.0
            for k in range(outputs.shape[1]):
                change = max(change, abs(outputs[hi, k] - outputs[lo, k]))
            low[size], high[size], node[size], weight[size] = lo, hi, child, half
            priority[size], tie[size] = -change * half, ties[4 * i + j]
            n = _push(heap, n, size, priority, tie)
            size += 1
    return n, size


@njit(cache=True)
def _settle(dvalues: np.ndarray, settled: np.ndarray, node: np.ndarray, weight: np.ndarray,
            low: np.ndarray, high: np.ndarray, outputs: np.ndarray) -> None:
    """Leave each settled entry's credit, (f_high - f_low) * weight, on its node, in order."""
    for entry in settled:
        for k in range(outputs.shape[1]):
            dvalues[node[entry], k] += (outputs[high[entry], k] - outputs[low[entry], k]) \
                * weight[entry]
