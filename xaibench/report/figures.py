"""Figures from the store: explanations of the same images side by side, in shap's image style."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from textwrap import fill
from typing import TYPE_CHECKING

import numpy as np

from xaibench.report.tables import IDENTITY, ORDER, Results, shown_identity

if TYPE_CHECKING:
    from matplotlib.colors import Colormap

#: percentile of |φ| that ends the colour scale (as shap.image_plot)
_SCALE_PERCENTILE = 99.9
_PANEL_INCHES = 1.6
_TITLE_CHARS = 22  # characters of a column title line that fit above a panel


def red_transparent_blue() -> "Colormap":
    """shap's image colour map: blue (negative) through transparent (zero) to red (positive)."""
    from matplotlib.colors import LinearSegmentedColormap

    blue, red = (30 / 255, 136 / 255, 229 / 255), (255 / 255, 13 / 255, 87 / 255)
    colors = ([(*blue, alpha) for alpha in np.linspace(1, 0, 100)]
              + [(*red, alpha) for alpha in np.linspace(0, 1, 100)])
    return LinearSegmentedColormap.from_list("red_transparent_blue", colors)


@dataclass(frozen=True)
class _Panel:
    """The top-1 explanation of one image by one cell."""

    heatmap: np.ndarray  # (H, W), summed over channels
    predicted: int
    explained: int


@dataclass(frozen=True)
class _Row:
    """One image of the figure and its explanation by each cell (None where not explained)."""

    image: np.ndarray  # (H, W, C) in [0, 1]
    label: int
    panels: list[_Panel | None]


def _image_ids(arrays: dict[str, np.ndarray]) -> list:
    """The ids of a cell's images (their positions where the runner stored none)."""
    return list(arrays.get("image_ids", range(len(arrays["values"]))))


def _rows(results: Results, cell_keys: list[str], n_images: int) -> list[_Row]:
    """The ``n_images`` images explained by most cells (first seen first) and their panels."""
    ids = {key: _image_ids(results.store.load_arrays(key)) for key in cell_keys}
    counts = Counter(image_id for key_ids in ids.values() for image_id in key_ids)
    chosen = sorted(counts, key=lambda image_id: -counts[image_id])[:n_images]  # sort is stable
    images, labels = {}, {}
    panels: dict[object, list[_Panel | None]] = {image_id: [] for image_id in chosen}
    for key in cell_keys:  # loaded again, one cell at a time, to keep memory small
        arrays = results.store.load_arrays(key)
        for image_id in chosen:
            if image_id not in ids[key]:
                panels[image_id].append(None)
                continue
            n = ids[key].index(image_id)
            images.setdefault(image_id, np.clip(arrays["images"][n], 0, 1))
            labels.setdefault(image_id, int(arrays["labels"][n]))
            panels[image_id].append(_Panel(arrays["values"][n, ..., 0].sum(axis=-1),
                                           int(arrays["predictions"][n]),
                                           int(arrays["output_indices"][n, 0])))
    return [_Row(images[i], labels[i], panels[i]) for i in chosen]


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) luminance of an (H, W, C) image (shap's RGB weights; mean for other C)."""
    if image.shape[-1] == 3:
        return image @ np.array([0.2989, 0.5870, 0.1140])
    return image.mean(axis=-1)


def explanation_figure(results: Results, dataset: str, path: Path,
                       n_images: int = 4) -> Path | None:
    """Write the top-1 explanations of ``dataset``'s most widely explained images.

    Rows are images (true class at the left, each model's prediction under its panel), the first
    column the image, then one column per backend x explainer x masker (the lowest-seed cell of
    each); one colour scale for the whole figure, as in ``shap.image_plot``. Returns ``path``,
    or None when the dataset has no finished cell.
    """
    from matplotlib.figure import Figure

    cells = results.cells
    done = cells[(cells["dataset"] == dataset) & (cells["status"] == "done")]
    columns = done.sort_values([*ORDER, "seed"]).drop_duplicates(IDENTITY)
    if columns.empty:
        return None
    rows = _rows(results, list(columns["cell_key"]), n_images)
    heatmaps = [panel.heatmap for row in rows for panel in row.panels if panel is not None]
    scale = np.nanpercentile(np.abs(heatmaps), _SCALE_PERCENTILE) or 1.0
    name = partial(results.class_name, dataset)

    figure = Figure(figsize=(_PANEL_INCHES * (len(columns) + 1), _PANEL_INCHES * len(rows) + 1.6),
                    layout="constrained", dpi=150)
    axes = figure.subplots(len(rows), len(columns) + 1, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    cmap = red_transparent_blue()
    for row, ax_row in zip(rows, axes):
        ax_row[0].imshow(row.image[..., 0] if row.image.shape[-1] == 1 else row.image,
                         cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax_row[0].set_ylabel(f"true: {name(row.label)}", fontsize=9)
        for panel, ax in zip(row.panels, ax_row[1:]):
            if panel is None:
                ax.text(0.5, 0.5, "not explained", ha="center", va="center", fontsize=8,
                        transform=ax.transAxes)
                continue
            ax.imshow(_grey(row.image), cmap="gray", alpha=0.15, interpolation="nearest")
            heat = ax.imshow(panel.heatmap, cmap=cmap, vmin=-scale, vmax=scale,
                             interpolation="nearest")
            label = f"pred: {name(panel.predicted)}"
            if panel.explained != panel.predicted:
                label += f"\nshown: {name(panel.explained)}"
            ax.set_xlabel(label, fontsize=8)
    titles = ["image"] + ["\n".join(fill(str(cell[c]) or "no masker", _TITLE_CHARS)
                                    for c in shown_identity(columns))
                          for _, cell in columns.iterrows()]
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=9)
    colorbar = figure.colorbar(heat, ax=axes[:, 1:].ravel().tolist(), orientation="horizontal",
                               label="SHAP value", shrink=0.6, aspect=30)
    colorbar.outline.set_visible(False)
    figure.suptitle(f"{dataset}: explanations of the top-1 output", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
