"""An example image folder (class-per-subfolder PNGs) to try the image-folder workflows on.

Each class is one glyph of :mod:`xaibench.data.synthetic` (plus, cross, square ...), drawn large
(``size // 10`` pixels per glyph cell, about half the image) in its own colour at a random
position on a noisy grey background. Only the object tells the classes apart, so a good
explanation lies on it. The folder is what :func:`xaibench.data.image_folder.load` reads (like
Kaggle's 10 Monkey Species): ``DEST/<glyph name>/<glyph name>_000.png`` ...

    xaibench data example-folder data/example_photos --size 224
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from xaibench.data.synthetic import GLYPH_NAMES, GLYPHS, PATTERN_SIZE
from xaibench.errors import ConfigError


def write(dest: str | Path, *, n_classes: int = 10, per_class: int = 12, size: int = 224,
          seed: int = 0) -> Path:
    """Write ``per_class`` RGB PNGs of ``size`` x ``size`` for each of ``n_classes`` classes
    under ``dest`` (created; existing files of the same names are overwritten). Returns
    ``dest``. The same arguments write identical files."""
    from PIL import Image

    for name, value, low, high in (("n_classes", n_classes, 2, len(GLYPHS)),
                                   ("per_class", per_class, 1, 100_000),
                                   ("size", size, 2 * PATTERN_SIZE, 4096)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"example folder: {name} must be an integer in [{low}, {high}], "
                              f"got {value!r}")
    root = Path(dest).expanduser()
    rng = np.random.default_rng(seed)
    cell = size // (2 * PATTERN_SIZE)
    extent = cell * PATTERN_SIZE
    for label in range(n_classes):
        folder = root / GLYPH_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array(colorsys.hsv_to_rgb(label / n_classes, 0.8, 0.9), dtype=np.float32)
        glyph = np.kron(GLYPHS[label], np.ones((cell, cell), dtype=bool))
        for index in range(per_class):
            image = 0.45 + 0.12 * rng.standard_normal((size, size, 3)).astype(np.float32)
            row, col = rng.integers(0, size - extent + 1, size=2)
            window = image[row:row + extent, col:col + extent]
            window[glyph] = colour + 0.05 * rng.standard_normal((int(glyph.sum()), 3))
            pixels = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{GLYPH_NAMES[label]}_{index:03d}.png")
    return root
