"""Image classification data sets, split and normalised once, held in memory as tensors.

`load_dataset(spec)` reads one pool of labelled images from

- ``"digits"``: scikit-learn's 8x8 handwritten digits (1,797 images, embedded, no download);
- a ``.npz`` file with arrays ``x`` (N,H,W or N,H,W,C channels-last; uint8 is scaled to [0, 1]) and
  ``y`` (N,) integer labels 0..K-1;
- an image folder: one subfolder per class (class index = position of its name in sorted order),
  images read with Pillow. Every image is resized (bilinear) to the size of the first image (first
  class, first file name) so one tensor holds them all; they are kept grayscale when every image is
  grayscale and converted to RGB otherwise;
- ``"torchvision:NAME[:ROOT]"``: a `torchvision.datasets` class with ``data``/``targets`` (MNIST,
  FashionMNIST, CIFAR10, CIFAR100, ...) already downloaded under ROOT (default: the working
  directory); its official train and test splits are pooled.

and splits the pool into stratified train / validation / test parts fixed by the seed, then
standardises every split with the training split's per-channel mean and standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nasforge.errors import NasforgeError

__all__ = ["Dataset", "load_dataset"]

ALLOWED = "digits, a .npz file, an image folder, torchvision:NAME[:ROOT]"
TORCHVISION_SUPPORTED = "MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100"  # classes with data/targets and train=
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value; identity is equality
class Dataset:
    """Train / validation / test splits: float32 (N, C, H, W) inputs standardised with the training
    split's per-channel statistics, int64 labels in 0..num_classes-1."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def load_dataset(spec: str = "digits", *, seed: int = 0, val_fraction: float = 0.2,
                 test_fraction: float = 0.2) -> Dataset:
    """The data set `spec` names, split by `seed` into (1 - val - test, val, test) fractions of the pool.

    >>> load_dataset("digits")
    Dataset('digits', train=1077, val=360, test=360, input_shape=(1, 8, 8), num_classes=10)
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise NasforgeError(f"val_fraction + test_fraction: must be < 1 to leave training data, "
                            f"got {val_fraction} + {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NasforgeError(f"seed: must be a whole number >= 0, got {seed!r}")
    name, x, y, num_classes = _read(str(spec))
    return _split(name, x, y, num_classes, int(seed), val_fraction, test_fraction)


def _check_fraction(field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise NasforgeError(f"{field}: must be a number strictly between 0 and 1, got {value!r}")


def _read(spec: str) -> tuple[str, np.ndarray, np.ndarray, int]:
    """(name, images N x C x H x W float32, labels int64, number of classes) of the pool `spec` names."""
    if spec == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images.astype(np.float32)[:, None] / 16.0  # pixel values are counts 0..16
        return "digits", x, digits.target.astype(np.int64), 10
    if spec.startswith("torchvision:"):
        return _read_torchvision(spec)
    path = Path(spec)
    if path.is_dir():
        return _read_folder(path)
    if path.is_file() and path.suffix == ".npz":
        return (path.stem, *_arrays(*_read_npz(path), source=str(path)))
    if path.is_file():
        raise NasforgeError(f"dataset: '{spec}' is not a .npz file or a folder (allowed: {ALLOWED})")
    raise NasforgeError(f"dataset: '{spec}' is neither a known name nor an existing path (allowed: {ALLOWED})")


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:  # a bare .npy array fails here with TypeError
            names = arrays.files
            x, y = (arrays["x"], arrays["y"]) if {"x", "y"} <= set(names) else (None, None)
    except (OSError, ValueError, TypeError) as error:
        raise NasforgeError(f"dataset: {path} is not a readable .npz file ({error})".splitlines()[0]) from None
    if x is None or y is None:
        missing = "x" if "x" not in names else "y"
        raise NasforgeError(f"dataset: {path} lacks array '{missing}' (needs: x, y; has: {', '.join(names) or 'none'})")
    return x, y


def _arrays(x: np.ndarray, y: np.ndarray, *, source: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Check channels-last images and integer labels; images come back N x C x H x W float32."""
    if x.ndim not in (3, 4) or (x.ndim == 4 and not 1 <= x.shape[3] <= 4):
        raise NasforgeError(f"x: expected (N,H,W) or channels-last (N,H,W,C) with C in 1..4, got shape {x.shape} in {source}")
    if y.ndim != 1 or len(y) != len(x):
        raise NasforgeError(f"y: expected shape ({len(x)},) to match x, got {y.shape} in {source}")
    if not np.issubdtype(y.dtype, np.integer):
        raise NasforgeError(f"y: expected integer class labels 0..K-1, got dtype {y.dtype} in {source}")
    if len(y) and y.min() < 0:
        raise NasforgeError(f"y: expected class labels 0..K-1, got {y.min()} in {source}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating):
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise NasforgeError(f"x: holds NaN or infinite values in {source}")
    else:
        raise NasforgeError(f"x: expected uint8 or real numbers, got dtype {x.dtype} in {source}")
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), y.astype(np.int64), int(y.max()) + 1 if len(y) else 0


def _read_folder(root: Path) -> tuple[str, np.ndarray, np.ndarray, int]:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise NasforgeError(f"dataset: folder {root} has no class subfolders (expected one subfolder of images per class)")
    files: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not found:
            raise NasforgeError(f"dataset: class folder {root / name} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        files += [(p, label) for p in found]
    images = []
    for path, _ in files:
        try:
            with Image.open(path) as image:
                image.load()
                images.append(image)
        except (UnidentifiedImageError, OSError) as error:
            raise NasforgeError(f"dataset: cannot read image {path} ({error})".splitlines()[0]) from None
    mode = "L" if all(image.mode in ("1", "L", "I;16", "I") for image in images) else "RGB"
    size = images[0].size
    pixels = [np.asarray(image.convert(mode).resize(size, Image.BILINEAR), dtype=np.uint8) for image in images]
    labels = np.array([label for _, label in files], dtype=np.int64)
    x, y, _ = _arrays(np.stack(pixels), labels, source=str(root))
    return root.name, x, y, len(classes)


def _read_torchvision(spec: str) -> tuple[str, np.ndarray, np.ndarray, int]:
    name, _, root = spec[len("torchvision:"):].partition(":")
    root_path = Path(root or ".")
    if not name:
        raise NasforgeError(f"dataset: '{spec}' names no data set (expected torchvision:NAME[:ROOT], "
                            "e.g. torchvision:CIFAR10:/data)")
    if not root_path.is_dir():
        raise NasforgeError(f"dataset: torchvision root '{root_path}' is not a folder (download the data set there first)")
    try:
        import torchvision.datasets
    except ImportError:
        raise NasforgeError(f"dataset: '{spec}' needs torchvision, which is not installed (pip install torchvision)") from None
    factory = getattr(torchvision.datasets, name, None)
    if not callable(factory):
        raise NasforgeError(f"dataset: '{name}' is not a torchvision.datasets class (supported: {TORCHVISION_SUPPORTED})")
    try:
        parts = [factory(str(root_path), train=train, download=False) for train in (True, False)]
    except TypeError:
        raise NasforgeError(f"dataset: torchvision '{name}' has no train/test splits (supported: {TORCHVISION_SUPPORTED})") from None
    except RuntimeError as error:  # torchvision's "Dataset not found or corrupted"
        raise NasforgeError(f"dataset: torchvision '{name}' not found under '{root_path}' ({error})".splitlines()[0]) from None
    if not all(hasattr(part, "data") and hasattr(part, "targets") for part in parts):
        raise NasforgeError(f"dataset: torchvision '{name}' has no data/targets arrays (supported: {TORCHVISION_SUPPORTED})")
    x = np.concatenate([np.asarray(part.data) for part in parts])
    y = np.concatenate([np.asarray(part.targets) for part in parts])
    return (name.lower(), *_arrays(x, y, source=spec))


def _split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int, seed: int,
           val_fraction: float, test_fraction: float) -> Dataset:
    index = np.arange(len(y))
    try:
        rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=y)
        # the validation fraction is of the whole pool, so of the rest it is val / (1 - test)
        train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
                                      stratify=y[rest])
    except ValueError as error:  # too few examples of a class for a stratified split
        raise NasforgeError(f"dataset: cannot split '{name}' stratified with val_fraction={val_fraction}, "
                            f"test_fraction={test_fraction} ({error})".splitlines()[0]) from None
    mean = x[train].mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    # a constant channel carries no information: map it to 0 instead of dividing by zero
    std = np.maximum(x[train].std(axis=(0, 2, 3), keepdims=True, dtype=np.float64), 1e-8)

    def part(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        images = ((x[rows] - mean) / std).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(y[rows].copy())

    return Dataset(name, *part(train), *part(val), *part(test), num_classes)
