"""Synthetic images with known ground truth: one 5x5 glyph per class on a noisy background.

Each image is a grey background (level 0.25) plus Gaussian noise (std ``noise``); the glyph
of its class is drawn at a uniformly random position with its "on" pixels at level 0.9 (plus
the same noise), all clipped to [0, 1]. Only the glyph decides the class, so its "on" pixels
are the ground-truth relevance mask (``masks_train`` / ``masks_test``).

Data depend only on the parameters: the same ``seed`` gives identical arrays. The train and
test sets come from independent random streams, so changing ``n_train`` leaves the test set
unchanged and vice versa. Labels are balanced (counts differ by at most one) and shuffled.
"""

from __future__ import annotations

import numpy as np

from xaibench.data.base import Dataset, DatasetInfo
from xaibench.errors import ConfigError

NAME = "synthetic"
BACKGROUND = 0.25
FOREGROUND = 0.9

_GLYPH_ART = {
    "plus": ("..#..",
             "..#..",
             "#####",
             "..#..",
             "..#.."),
    "cross": ("#...#",
              ".#.#.",
              "..#..",
              ".#.#.",
              "#...#"),
    "square": ("#####",
               "#...#",
               "#...#",
               "#...#",
               "#####"),
    "triangle": ("..#..",
                 ".#.#.",
                 ".#.#.",
                 "#...#",
                 "#####"),
    "V": ("#...#",
          "#...#",
          ".#.#.",
          ".#.#.",
          "..#.."),
    "T": ("#####",
          "..#..",
          "..#..",
          "..#..",
          "..#.."),
    "diamond": ("..#..",
                ".#.#.",
                "#...#",
                ".#.#.",
                "..#.."),
    "arrow": ("..#..",
              ".###.",
              "#.#.#",
              "..#..",
              "..#.."),
    "H": ("#...#",
          "#...#",
          "#####",
          "#...#",
          "#...#"),
    "Z": ("#####",
          "...#.",
          "..#..",
          ".#...",
          "#####"),
}

GLYPH_NAMES = tuple(_GLYPH_ART)
GLYPHS = np.array([[[c == "#" for c in row] for row in art] for art in _GLYPH_ART.values()],
                  dtype=bool)
GLYPHS.setflags(write=False)
PATTERN_SIZE = GLYPHS.shape[1]


def load(*, n_train: int = 1000, n_test: int = 200, size: int = 28, n_classes: int = 4,
         noise: float = 0.1, seed: int = 0) -> Dataset:
    """Generate the dataset: x (N, size, size, 1) float32 in [0, 1], y int64, bool masks.

    ``n_classes`` (2..10) picks the first glyphs of :data:`GLYPH_NAMES` (class names are the
    glyph names); ``noise`` is the standard deviation of the Gaussian pixel noise.
    """
    describe(n_train=n_train, n_test=n_test, size=size, n_classes=n_classes, noise=noise,
             seed=seed)
    train_seq, test_seq = np.random.SeedSequence(int(seed)).spawn(2)
    x_train, y_train, m_train = _generate(np.random.default_rng(train_seq), int(n_train),
                                          int(size), int(n_classes), float(noise))
    x_test, y_test, m_test = _generate(np.random.default_rng(test_seq), int(n_test), int(size),
                                       int(n_classes), float(noise))
    return Dataset(name=NAME, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   class_names=GLYPH_NAMES[:n_classes], masks_train=m_train, masks_test=m_test)


def describe(*, n_train: int = 1000, n_test: int = 200, size: int = 28, n_classes: int = 4,
             noise: float = 0.1, seed: int = 0) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without generating it."""
    for name, value, low in (("n_train", n_train, 0), ("n_test", n_test, 0),
                             ("size", size, PATTERN_SIZE), ("n_classes", n_classes, 2),
                             ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"synthetic: {name} must be an integer >= {low}, got {value!r}")
    if n_classes > len(GLYPHS):
        raise ConfigError(f"synthetic: n_classes must be at most {len(GLYPHS)}, got {n_classes}")
    if (isinstance(noise, bool) or not isinstance(noise, (int, float, np.number))
            or not np.isfinite(noise) or noise < 0):
        raise ConfigError(f"synthetic: noise must be a finite number >= 0, got {noise!r}")
    return DatasetInfo(shape=(int(size), int(size), 1), n_classes=int(n_classes),
                       has_masks=True, n_train=int(n_train), n_test=int(n_test))


def _generate(rng: np.random.Generator, n: int, size: int, n_classes: int,
              noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n, dtype=np.int64) % n_classes)
    rows = rng.integers(0, size - PATTERN_SIZE + 1, size=n)
    cols = rng.integers(0, size - PATTERN_SIZE + 1, size=n)
    masks = np.zeros((n, size, size), dtype=bool)
    # scatter each glyph into its image: index grids of shape (n, 5, 5)
    offsets = np.arange(PATTERN_SIZE)
    r = rows[:, None, None] + offsets[None, :, None]
    c = cols[:, None, None] + offsets[None, None, :]
    masks[np.arange(n)[:, None, None], r, c] = GLYPHS[labels]
    images = np.where(masks, np.float32(FOREGROUND), np.float32(BACKGROUND)).astype(np.float32)
    images += (noise * rng.standard_normal((n, size, size))).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images[..., None], labels, masks
