"""Tables that compare stored attribution arrays pairwise: framework parity, explainer agreement.

Two cells are compared on what both explain: the images they share (by image id) and, per image,
the classes both explained (whatever their rank among the explained outputs).
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from xaibench.metrics.agreement import spearman_agreement
from xaibench.report._formats import Notation, Shown
from xaibench.report.tables import Results, config_labels, show_plain, shown_identity

if TYPE_CHECKING:
    import pandas as pd

#: what a framework-parity pair shares (it differs only in backend)
PARITY_KEY = ["dataset", "architecture", "explainer", "masker", "params"]
PARITY_COLUMNS = [*PARITY_KEY, "backend_a", "backend_b", "same_weights", "pairs", "max_abs_diff",
                  "max_abs_value", "spearman_mean", "spearman_min"]


def image_ids(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The ids of a cell's images (their positions where the runner stored none)."""
    return np.asarray(arrays.get("image_ids", np.arange(len(arrays["values"]))))


def matched(a: dict[str, np.ndarray], b: dict[str, np.ndarray],
            name: str = "values") -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``name`` (N, H, W, C, K) of two cells at the (image, class) pairs both explain,
    each as (M, H, W, C, 1) in the same pair order."""
    _, ia, ib = np.intersect1d(image_ids(a), image_ids(b), return_indices=True)
    same = a["output_indices"][ia][:, :, None] == b["output_indices"][ib][:, None, :]
    image, ka, kb = np.nonzero(same)
    return a[name][ia[image], ..., ka][..., None], b[name][ib[image], ..., kb][..., None]


def parity_table(results: Results) -> "pd.DataFrame":
    """Each pair of backends that explained the same configuration (one cell each, the lowest
    seed): ``same_weights`` (one model's weights were copied from the other, or both from one
    source: the training params' ``weights_from``), ``pairs`` (image, class) compared,
    max |φ_a − φ_b| over them, max |φ| of either, and the mean and min Spearman correlation of
    the pixel relevance per pair."""
    import pandas as pd

    source = dict(zip(results.models["model_key"],
                      results.models["train_params"].map(lambda p: p.get("weights_from"))))
    rows = []
    for key, group in results.configurations().groupby(PARITY_KEY, sort=False):
        cells = list(group.itertuples())
        for a, b in combinations(cells, 2):
            from_a, from_b = source.get(a.model_key), source.get(b.model_key)
            same = (from_a in (b.model_key, b.backend) or from_b in (a.model_key, a.backend)
                    or from_a is not None and from_a == from_b)
            va, vb = matched(results.store.load_arrays(a.cell_key),
                             results.store.load_arrays(b.cell_key))
            rows.append([*key, a.backend, b.backend, same, len(va), *_parity(va, vb)])
    return pd.DataFrame(rows, columns=PARITY_COLUMNS)


def _parity(va: np.ndarray, vb: np.ndarray) -> list[float]:
    """max |a − b|, max |a| or |b|, mean and min Spearman correlation (NaN when empty)."""
    if not len(va):
        return [np.nan] * 4
    rho = spearman_agreement(va, vb)
    return [np.abs(va - vb).max(), max(np.abs(va).max(), np.abs(vb).max()), rho.mean(),
            rho.min()]


def agreement_table(results: Results, dataset: str) -> "pd.DataFrame":
    """Mean Spearman correlation of the pixel relevance (signed, channels summed) between every
    two configurations of ``dataset`` (one cell each, the lowest seed), over the (image, class)
    pairs both explain; index and columns are the configurations' labels. NaN: nothing shared."""
    import pandas as pd

    cells = results.configurations(dataset)
    relevance = []
    for key in cells["cell_key"]:  # channels summed at once: C times less memory
        arrays = results.store.load_arrays(key)
        relevance.append({**arrays, "values": arrays["values"].sum(axis=3, keepdims=True)})
    matrix = np.eye(len(cells))
    for i, j in combinations(range(len(cells)), 2):
        va, vb = matched(relevance[i], relevance[j])
        matrix[i, j] = matrix[j, i] = np.nanmean(spearman_agreement(va, vb)) if len(va) else np.nan
    labels = config_labels(cells)
    return pd.DataFrame(matrix, index=labels, columns=labels)


def show_parity(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's parity rows as strings."""
    identity = [c for c in shown_identity(rows.assign(backend="")) if c != "backend"]
    texts = rows.assign(backends=rows["backend_a"] + " vs " + rows["backend_b"],
                        weights=rows["same_weights"].map({True: "copied", False: "own"}))
    return show_plain(texts, [*identity, "backends", "weights"], {
        "pairs": ("pairs", "d"), "max abs diff": ("max_abs_diff", ".3g"),
        "max abs value": ("max_abs_value", ".3g"), "Spearman mean": ("spearman_mean", ".4f"),
        "Spearman min": ("spearman_min", ".4f")}, notation)


def show_agreement(matrix: "pd.DataFrame", notation: Notation) -> Shown:
    """An agreement matrix as strings: rows "(i) label", columns "(i)"."""
    numbers = [f"({i})" for i in range(1, len(matrix) + 1)]
    rows = matrix.set_axis(numbers, axis=1).reset_index(names="configuration")
    rows["configuration"] = [f"{n} {label}" for n, label in zip(numbers, matrix.index)]
    return show_plain(rows, ["configuration"], {n: (n, ".2f") for n in numbers}, notation)
