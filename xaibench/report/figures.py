"""Image figures from the store, in shap's image style: explanations of the same images side
by side, and one image's top-k explained classes. Each is written as PNG and SVG."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from textwrap import fill
from typing import TYPE_CHECKING

import numpy as np

from xaibench.report.pairwise import image_ids
from xaibench.report.tables import Results, config_labels, shown_identity

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

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
    """The explanations of one image by one cell, one per explained class."""

    heatmaps: np.ndarray  # (K, H, W), channels summed
    explained: np.ndarray  # (K,) class indices
    scores: np.ndarray  # (K,) the model's scores of those classes
    predicted: int


@dataclass(frozen=True)
class _Row:
    """One image and its explanation by each cell (None where not explained)."""

    image: np.ndarray  # (H, W, C) in [0, 1]
    label: int
    panels: list[_Panel | None]


def _rows(results: Results, cell_keys: list[str], n_images: int) -> list[_Row]:
    """The ``n_images`` images explained by most cells (first seen first) and their panels."""
    ids = {key: list(image_ids(results.store.load_arrays(key))) for key in cell_keys}
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
            panels[image_id].append(_Panel(np.moveaxis(arrays["values"][n].sum(axis=2), -1, 0),
                                           arrays["output_indices"][n],
                                           arrays["model_outputs"][n],
                                           int(arrays["predictions"][n])))
    return [_Row(images[i], labels[i], panels[i]) for i in chosen]


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) luminance of an (H, W, C) image (shap's RGB weights; mean for other C)."""
    if image.shape[-1] == 3:
        return image @ np.array([0.2989, 0.5870, 0.1140])
    return image.mean(axis=-1)


def _show_image(ax: "Axes", image: np.ndarray) -> None:
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")


def _show_heatmap(ax: "Axes", image: np.ndarray, heatmap: np.ndarray, scale: float):
    """The heatmap over the image in faint grey; returns the heatmap's image (for a colour bar)."""
    ax.imshow(_grey(image), cmap="gray", alpha=0.15, interpolation="nearest")
    return ax.imshow(heatmap, cmap=red_transparent_blue(), vmin=-scale, vmax=scale,
                     interpolation="nearest")


def _scale(columns: list[list[np.ndarray]]) -> float:
    """The end of the symmetric colour scale shared by all panels.

    Each column (one explainer configuration) gets shap.image_plot's end (a high percentile of
    |φ|); the figure uses the median over columns, so one column on a much larger scale (the
    random baseline's unit noise) saturates instead of washing out every other column.
    """
    ends = [np.nanpercentile(np.abs(np.concatenate([np.ravel(h) for h in column])),
                             _SCALE_PERCENTILE) for column in columns if column]
    return float(np.median(ends)) if ends and np.median(ends) > 0 else 1.0


def _bare(axes: np.ndarray) -> None:
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)


def save(figure: "Figure", path: Path) -> Path:
    """Write ``figure`` to ``path`` (PNG) and next to it as SVG; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target in (path, path.with_suffix(".svg")):
        figure.savefig(target, bbox_inches="tight")
    return path


def explanation_figure(results: Results, dataset: str, path: Path,
                       n_images: int = 4) -> Path | None:
    """Write the top-1 explanations of ``dataset``'s most widely explained images.

    Rows are images (true class at the left, each model's prediction under its panel), the first
    column the image, then one column per backend x explainer x masker (the lowest-seed cell of
    each); one symmetric colour scale for the whole figure (see :func:`_scale`). Returns ``path``,
    or None when the dataset has no finished cell.
    """
    from matplotlib.figure import Figure

    columns = results.configurations(dataset)
    if columns.empty:
        return None
    rows = _rows(results, list(columns["cell_key"]), n_images)
    scale = _scale([[row.panels[c].heatmaps[0] for row in rows if row.panels[c]]
                    for c in range(len(columns))])
    name = partial(results.class_name, dataset)

    figure = Figure(figsize=(_PANEL_INCHES * (len(columns) + 1), _PANEL_INCHES * len(rows) + 1.6),
                    layout="constrained", dpi=150)
    axes = figure.subplots(len(rows), len(columns) + 1, squeeze=False)
    _bare(axes)
    for row, ax_row in zip(rows, axes):
        _show_image(ax_row[0], row.image)
        ax_row[0].set_ylabel(f"true: {name(row.label)}", fontsize=9)
        for panel, ax in zip(row.panels, ax_row[1:]):
            if panel is None:
                ax.text(0.5, 0.5, "not explained", ha="center", va="center", fontsize=8,
                        transform=ax.transAxes)
                continue
            heat = _show_heatmap(ax, row.image, panel.heatmaps[0], scale)
            label = f"pred: {name(panel.predicted)}"
            if panel.explained[0] != panel.predicted:
                label += f"\nshown: {name(panel.explained[0])}"
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
    return save(figure, path)


def topk_figure(results: Results, dataset: str, path: Path) -> Path | None:
    """Write one image's explanations of each of its explained classes, side by side.

    The image is ``dataset``'s most widely explained one; each row is a configuration that
    explained at least two classes of it (the lowest-seed cell), each column one class, titled
    by its name and the model's score. Returns ``path``, or None when no cell explained two.
    """
    from matplotlib.figure import Figure

    cells = results.configurations(dataset)
    if cells.empty:
        return None
    (row,) = _rows(results, list(cells["cell_key"]), 1)
    shown = [(label, panel) for label, panel in zip(config_labels(cells), row.panels)
             if panel is not None and len(panel.explained) > 1]
    if not shown:
        return None
    k = max(len(panel.explained) for _, panel in shown)
    scale = _scale([[panel.heatmaps] for _, panel in shown])
    name = partial(results.class_name, dataset)

    mosaic = [["image", *(f"{r} {j}" for j in range(k))] for r in range(len(shown))]
    figure = Figure(figsize=(_PANEL_INCHES * (k + 1) + 0.8, (_PANEL_INCHES + 0.15) * len(shown)
                             + 1.4), layout="constrained", dpi=150)
    axes = figure.subplot_mosaic(mosaic)
    _bare(np.array(list(axes.values())))
    _show_image(axes["image"], row.image)
    axes["image"].set_title(f"true: {name(row.label)}", fontsize=9)
    for r, (label, panel) in enumerate(shown):
        axes[f"{r} 0"].set_ylabel(fill(label, _TITLE_CHARS), fontsize=8)
        for j in range(k):
            ax = axes[f"{r} {j}"]
            if j >= len(panel.explained):
                continue
            heat = _show_heatmap(ax, row.image, panel.heatmaps[j], scale)
            ax.set_title(f"{name(panel.explained[j])} ({panel.scores[j]:.3g})", fontsize=8)
    colorbar = figure.colorbar(heat, ax=[axes[f"{r} {j}"] for r in range(len(shown))
                                         for j in range(k)],
                               orientation="horizontal", label="SHAP value", shrink=0.6,
                               aspect=30)
    colorbar.outline.set_visible(False)
    figure.suptitle(f"{dataset}: the top-{k} explained classes of one image "
                    "(model score)", fontsize=11)
    return save(figure, path)


def image_figure(image: np.ndarray, heatmaps: np.ndarray, titles: list[str], title: str,
                 path: Path) -> Path:
    """Write shap.image_plot's panel for one image: the image, then one heat map per explained
    class (``heatmaps`` (K, H, W), channels summed; ``titles`` name them) on one colour scale."""
    from matplotlib.figure import Figure

    k = len(heatmaps)
    figure = Figure(figsize=(_PANEL_INCHES * (k + 1), _PANEL_INCHES + 1.4),
                    layout="constrained", dpi=150)
    axes = figure.subplots(1, k + 1, squeeze=False)[0]
    _bare(axes)
    _show_image(axes[0], image)
    axes[0].set_title("image", fontsize=9)
    scale = _scale([[heatmaps]])
    for ax, heatmap, label in zip(axes[1:], heatmaps, titles):
        heat = _show_heatmap(ax, image, heatmap, scale)
        ax.set_title(fill(label, _TITLE_CHARS), fontsize=8)
    colorbar = figure.colorbar(heat, ax=list(axes[1:]), orientation="horizontal",
                               label="SHAP value", shrink=0.6, aspect=30)
    colorbar.outline.set_visible(False)
    figure.suptitle(title, fontsize=11)
    return save(figure, path)
