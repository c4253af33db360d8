"""Framework parity and explainer agreement, computed from stored attribution arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.report._store import (DATASET, K, N_IMAGES, cell_arrays, cell_record,
                                      model_record)
from xaibench.experiment.store import Store
from xaibench.report import Results, agreement_table, parity_table
from xaibench.report._formats import WRITERS
from xaibench.report.pairwise import matched, show_agreement, show_parity

SHAPE = (8, 8, 1)


def _store_parity_run(root) -> dict[str, np.ndarray]:
    """torch; keras with torch's weights and twice its values (image 3 missing, the outputs of
    image 1 in the other order); flax with its own weights and minus torch's values."""
    store = Store(root)
    torch = cell_arrays(np.zeros((N_IMAGES, K)), SHAPE, seed=0)
    keras = {name: array[:3].copy() for name, array in torch.items()}
    keras["values"] *= 2
    for name in ("values", "output_indices"):
        keras[name][1] = keras[name][1][..., ::-1]
    flax = {**torch, "values": -torch["values"]}
    for backend, arrays, params in [("torch", torch, None), ("keras", keras, "torch-digits"),
                                    ("flax", flax, None)]:
        store.put_model(model_record(backend, train_params=params and {"weights_from": params}))
        store.put_cell(cell_record(backend, "deep", None, {}), arrays)
    return torch


def test_matched_pairs_images_by_id_and_outputs_by_class():
    a = cell_arrays(np.zeros((N_IMAGES, K)), SHAPE, seed=0)
    b = {**a, "image_ids": a["image_ids"][::-1], "output_indices": a["output_indices"][::-1, ::-1],
         "values": a["values"][::-1, ..., ::-1]}
    va, vb = matched(a, b)
    assert va.shape == (N_IMAGES * K, *SHAPE, 1)
    np.testing.assert_array_equal(va, vb)
    disjoint = {**b, "image_ids": b["image_ids"] + 1000}
    assert len(matched(a, disjoint)[0]) == 0


def test_parity_table(tmp_path):
    torch = _store_parity_run(tmp_path)
    table = parity_table(Results.load(tmp_path)).set_index(["backend_a", "backend_b"])
    assert set(table.index) == {("flax", "keras"), ("flax", "torch"), ("keras", "torch")}
    peak = np.abs(torch["values"]).max()
    shared = np.abs(torch["values"][:3]).max()
    keras_torch = table.loc[("keras", "torch")]
    assert keras_torch.same_weights and keras_torch.pairs == 3 * K
    assert keras_torch.max_abs_diff == pytest.approx(shared)  # |2φ − φ| = |φ|
    assert keras_torch.max_abs_value == pytest.approx(2 * shared)
    assert keras_torch.spearman_mean == keras_torch.spearman_min == pytest.approx(1.0)
    flax_torch = table.loc[("flax", "torch")]
    assert not flax_torch.same_weights and flax_torch.pairs == N_IMAGES * K
    assert flax_torch.max_abs_diff == pytest.approx(2 * peak)
    assert flax_torch.spearman_mean == pytest.approx(-1.0)
    assert table.loc[("flax", "keras")].spearman_mean == pytest.approx(-1.0)
    assert (table[["dataset", "architecture", "explainer", "masker"]].drop_duplicates()
            .values.tolist() == [[DATASET, "fmnist_cnn", "deep", ""]])


def test_parity_shown(tmp_path):
    _store_parity_run(tmp_path)
    shown = show_parity(parity_table(Results.load(tmp_path)), WRITERS["md"].notation)
    assert list(shown.cells.columns) == ["explainer", "masker", "backends", "weights", "pairs",
                                         "max abs diff", "max abs value", "Spearman mean",
                                         "Spearman min"]
    assert shown.cells.set_index("backends")["weights"].to_dict() == \
        {"flax vs keras": "own", "flax vs torch": "own", "keras vs torch": "copied"}


def test_agreement_table(tmp_path):
    _store_parity_run(tmp_path)
    store = Store(tmp_path)
    arrays = store.load_arrays(f"{DATASET}-torch-deep")
    store.put_cell(cell_record("torch", "random", None, {}),  # shares no image with the others
                   {**arrays, "image_ids": arrays["image_ids"] + 1000})
    matrix = agreement_table(Results.load(tmp_path), DATASET)
    labels = ["flax / deep", "keras / deep", "torch / deep", "torch / random"]
    assert list(matrix.index) == list(matrix.columns) == labels
    expected = [[1, -1, -1, np.nan], [-1, 1, 1, np.nan], [-1, 1, 1, np.nan],
                [np.nan, np.nan, np.nan, 1]]
    np.testing.assert_allclose(matrix.to_numpy(), expected, atol=1e-9)
    shown = show_agreement(matrix, WRITERS["md"].notation)
    assert shown.cells.columns.tolist() == ["configuration", "(1)", "(2)", "(3)", "(4)"]
    assert shown.cells["configuration"].tolist()[0] == "(1) flax / deep"
    assert shown.cells["(2)"].tolist() == ["-1.00", "1.00", "1.00", "—"]


def test_tables_of_a_store_without_cells(tmp_path):
    Store(tmp_path)
    results = Results.load(tmp_path)
    assert parity_table(results).empty
    assert agreement_table(results, DATASET).equals(pd.DataFrame(np.eye(0), index=[],
                                                                 columns=[]))
