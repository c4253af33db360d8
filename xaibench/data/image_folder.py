"""Images in a class-per-subfolder layout (like Kaggle's 10 Monkey Species)::

    root/
      class_a/  img001.jpg  img002.png  ...
      class_b/  ...

Class names are the sorted subfolder names; images in nested folders below a class folder
belong to that class. PNG and JPEG files are decoded with Pillow, EXIF-rotated, converted to
RGB (or grey) and resized to ``size`` (stretched, no cropping). Files that are not images
or cannot be decoded are skipped with one :class:`ImageFolderWarning` listing each of them
and the reason; hidden files (``.name``) are ignored silently.

Images of different sizes, or a mix of greyscale and colour images, are not an error: every
image is resized to ``size`` and converted to RGB (grey with ``grayscale``) as always, and one
:class:`ImageFolderWarning` says how many sizes and how many grey and colour images there were.
Errors (:class:`~xaibench.errors.DataError`): a missing or empty root, a class folder without
a readable image, and a single class (a classifier needs at least two).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from xaibench.data.base import Dataset, DatasetInfo, check_count
from xaibench.errors import ConfigError, DataError

NAME = "image_folder"
EXTENSIONS = (".png", ".jpg", ".jpeg")
#: Pillow modes of greyscale images (palette images count as colour)
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"})


class ImageFolderWarning(UserWarning):
    """Some files under an image folder were skipped."""


def load(*, root: str, size: tuple[int, int] | int = 64, grayscale: bool = False,
         test_fraction: float = 0.2, seed: int = 0, n_train: int | None = None,
         n_test: int | None = None) -> Dataset:
    """Read ``root`` into a :class:`Dataset` of (N, H, W, 3) (or 1 with ``grayscale``) images.

    ``size`` is ``(height, width)`` or one int for square images. The train/test split is
    stratified and seeded: within each class ``test_fraction * count`` images (rounded half
    up, keeping at least one for training) go to the test set, chosen by
    ``numpy.random.default_rng(seed)``; both splits are then shuffled with the same generator.
    ``n_train`` / ``n_test`` keep the first n images of each split; None keeps all.

    Raises :class:`DataError` when ``root`` does not exist or is not a folder, when it has
    fewer than two class subfolders, or when a class folder has no readable image.
    """
    height, width = _check_size(size)
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0.0 <= test_fraction < 1.0):
        raise ConfigError(f"image_folder: test_fraction must be in [0, 1), got {test_fraction!r}")
    path = Path(os.fspath(root)).expanduser()
    _check_root(path)

    skipped: list[tuple[Path, str]] = []
    class_dirs = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            class_dirs.append(entry)
        else:
            skipped.append((entry, "not inside a class folder"))
    if not class_dirs:
        _warn_skipped(path, skipped)
        raise DataError(f"image folder {path} is empty: expected one subfolder per class "
                        "holding PNG/JPEG images")
    if len(class_dirs) == 1:
        _warn_skipped(path, skipped)
        raise DataError(f"image folder {path} has a single class folder ({class_dirs[0].name}): "
                        f"a classifier needs at least 2 classes; add one subfolder of images "
                        f"per class")

    images: list[np.ndarray] = []
    labels: list[int] = []
    originals: list[tuple[int, int, bool]] = []  # (height, width, grey) before conversion
    empty = []
    for label, folder in enumerate(class_dirs):
        count = 0
        for file in _files(folder):
            if file.suffix.lower() not in EXTENSIONS:
                skipped.append((file, f"not a PNG/JPEG file (extension '{file.suffix}')"))
                continue
            try:
                image, original = _read_image(file, height, width, grayscale)
            except Exception as exc:  # noqa: BLE001 - any undecodable file is skipped
                skipped.append((file, f"cannot decode image: {type(exc).__name__}: {exc}"))
                continue
            images.append(image)
            originals.append(original)
            labels.append(label)
            count += 1
        if count == 0:
            empty.append(folder)
    _warn_skipped(path, skipped)
    if empty:
        raise DataError(f"image folder {path}: no readable PNG/JPEG image in class folder(s) "
                        + ", ".join(str(f) for f in empty)
                        + "; add images to each class folder or remove the empty ones")
    _warn_mixed(path, originals, (height, width), grayscale)

    x = np.stack(images)
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    test_mask = np.zeros(len(y), dtype=bool)
    for label in range(len(class_dirs)):
        members = np.flatnonzero(y == label)
        n_test_c = min(int(np.floor(float(test_fraction) * len(members) + 0.5)), len(members) - 1)
        test_mask[rng.permutation(members)[:n_test_c]] = True
    train_idx = rng.permutation(np.flatnonzero(~test_mask))
    test_idx = rng.permutation(np.flatnonzero(test_mask))
    train_idx = train_idx[:check_count("image_folder", "n_train", n_train, len(train_idx))]
    test_idx = test_idx[:check_count("image_folder", "n_test", n_test, len(test_idx))]
    return Dataset(
        name=NAME,
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_test=x[test_idx],
        y_test=y[test_idx],
        class_names=tuple(d.name for d in class_dirs),
    )


def _files(folder: Path) -> list[Path]:
    """Non-hidden files below ``folder`` (recursively, not into hidden folders), sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return sorted(found)


def _read_image(file: Path, height: int, width: int,
                grayscale: bool) -> tuple[np.ndarray, tuple[int, int, bool]]:
    """One image as float32 (height, width, channels) in [0, 1], and its original (height,
    width, is greyscale)."""
    from PIL import Image, ImageOps

    with Image.open(file) as img:
        if img.format not in ("PNG", "JPEG", "MPO"):
            raise ValueError(f"file content is {img.format}, not PNG/JPEG")
        original_size, grey = img.size, img.mode in _GREY_MODES
        if img.format in ("JPEG", "MPO"):
            # decode large JPEGs at a reduced scale (still >= the requested size)
            img.draft("L" if grayscale else "RGB", (width, height))
        img.load()
        img = ImageOps.exif_transpose(img)
        img = _to_8bit(img)
        img = img.convert("L" if grayscale else "RGB")
        img = img.resize((width, height), Image.Resampling.BILINEAR)
        array = np.asarray(img, dtype=np.float32) / np.float32(255)
    return (array[..., None] if grayscale else array), (original_size[1], original_size[0], grey)


def _warn_mixed(root: Path, originals: list[tuple[int, int, bool]], size: tuple[int, int],
                grayscale: bool) -> None:
    """One warning when the images had different sizes or mixed greyscale and colour."""
    sizes = sorted({(h, w) for h, w, _ in originals})
    n_grey = sum(grey for _, _, grey in originals)
    notes = []
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:3]) + (", ..." if len(sizes) > 3 else "")
        notes.append(f"{len(sizes)} different sizes ({shown}) were all resized to "
                     f"{size[0]}x{size[1]} (stretched)")
    if 0 < n_grey < len(originals):
        notes.append(f"{n_grey} greyscale and {len(originals) - n_grey} colour images were all "
                     f"converted to {'greyscale' if grayscale else 'RGB'}")
    if notes:
        warnings.warn(f"image folder {root}: " + "; ".join(notes) + " (choose with the size "
                      "and grayscale parameters)", ImageFolderWarning, stacklevel=3)


def _to_8bit(img):
    """16-bit and float greyscale images scaled to 8 bits (Pillow would clip them)."""
    from PIL import Image

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(img, dtype=np.float64)
        scale = 1.0 if img.mode == "F" else (65535.0 if values.max(initial=0) > 255 else 255.0)
        return Image.fromarray(np.clip(values / scale * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return img


def _warn_skipped(root: Path, skipped: list[tuple[Path, str]]) -> None:
    if skipped:
        lines = "\n".join(f"  {file}: {reason}" for file, reason in skipped)
        warnings.warn(f"image folder {root}: skipped {len(skipped)} file(s):\n{lines}",
                      ImageFolderWarning, stacklevel=3)


def _check_root(path: Path) -> None:
    if not path.is_dir():
        raise DataError(f"image folder {path} "
                        + ("is not a directory" if path.exists() else "does not exist")
                        + ": set root to a folder with one subfolder of images per class, or "
                        f"write an example one with `xaibench data example-folder {path}`")


def _check_size(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        dims = (int(size), int(size))
    elif (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)):
        dims = (int(size[0]), int(size[1]))
    else:
        raise ConfigError(f"image_folder: size must be an int or (height, width), got {size!r}")
    if min(dims) < 1:
        raise ConfigError(f"image_folder: size must be positive, got {size!r}")
    return dims


def describe(*, root: str, size: tuple[int, int] | int = 64, grayscale: bool = False,
             test_fraction: float = 0.2, seed: int = 0, n_train: int | None = None,
             n_test: int | None = None) -> DatasetInfo:
    """What :func:`load` with these parameters returns, checked without reading an image: the
    classes are the class subfolders of ``root`` (nothing else is read). Split sizes are
    known only when ``n_train`` / ``n_test`` (or ``test_fraction = 0``) make them 0."""
    height, width = _check_size(size)
    _check_test_fraction(test_fraction)
    path = Path(os.fspath(root)).expanduser()
    _check_root(path)
    try:
        n_classes = sum(1 for entry in path.iterdir()
                        if entry.is_dir() and not entry.name.startswith("."))
    except OSError as exc:
        raise DataError(f"image folder {path} cannot be listed: {exc.strerror}; make it "
                        "readable") from None
    if n_classes == 0:
        raise DataError(f"image folder {path} is empty: expected one subfolder per class "
                        "holding PNG/JPEG images")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))
                              or n < 0):
            raise ConfigError(f"image_folder: {name} must be an integer >= 0, got {n!r}")
    return DatasetInfo(shape=(height, width, 1 if grayscale else 3), n_classes=n_classes,
                       n_train=0 if n_train == 0 else None,
                       n_test=0 if n_test == 0 or test_fraction == 0 else None)


def _check_test_fraction(test_fraction: float) -> None:
    if (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
            or not 0.0 <= test_fraction < 1.0):
        raise ConfigError(f"image_folder: test_fraction must be in [0, 1), got {test_fraction!r}")
