"""The example image folder: class-distinct PNGs that image_folder reads back."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest

from xaibench.data import example_folder, image_folder
from xaibench.data.synthetic import GLYPH_NAMES, GLYPHS
from xaibench.errors import ConfigError, DataError


def test_the_folder_reads_back_with_its_classes_sizes_and_colours(tmp_path):
    root = example_folder.write(tmp_path / "photos", n_classes=3, per_class=4, size=40)
    data = image_folder.load(root=str(root), size=40, test_fraction=0.25)
    assert data.class_names == tuple(sorted(GLYPH_NAMES[:3]))
    assert data.x_train.shape == (9, 40, 40, 3) and data.x_test.shape == (3, 40, 40, 3)
    # each image holds its class's object: the glyph's cells in the class's colour
    for x, y in zip(data.x_train, data.y_train):
        glyph = GLYPH_NAMES.index(data.class_names[y])
        colour = np.array(colorsys.hsv_to_rgb(glyph / 3, 0.8, 0.9))
        coloured = int((np.linalg.norm(x - colour, axis=-1) < 0.25).sum())
        cells = (40 // 10) ** 2 * int(GLYPHS[glyph].sum())
        assert abs(coloured - cells) <= 0.1 * cells, (coloured, cells)

def test_the_same_arguments_write_identical_files(tmp_path):
    first = example_folder.write(tmp_path / "a", n_classes=2, per_class=2, size=20, seed=5)
    second = example_folder.write(tmp_path / "b", n_classes=2, per_class=2, size=20, seed=5)
    files = sorted(path.relative_to(first) for path in first.rglob("*.png"))
    assert len(files) == 4
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


@pytest.mark.parametrize("kwargs, name", [({"n_classes": 11}, "n_classes"),
                                          ({"per_class": 0}, "per_class"),
                                          ({"size": 4}, "size"), ({"size": 2.5}, "size")])
def test_bad_arguments_are_refused_naming_the_range(tmp_path, kwargs, name):
    with pytest.raises(ConfigError, match=rf"example folder: {name} must be an integer in"):
        example_folder.write(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_a_missing_image_folder_names_the_example_command(tmp_path):
    for check in (image_folder.load, image_folder.describe):
        with pytest.raises(DataError, match=r"does not exist.*xaibench data example-folder"):
            check(root=str(tmp_path / "nope"))
