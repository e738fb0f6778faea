"""Data sets: the embedded digits, .npz files and image folders made here, the shared CIFAR-10 extract,
stratified seeded splits, train-statistics normalisation, and every malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge import NasforgeError
from nasforge.data import Dataset, load_dataset

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # ../shared/data beside the checkout


def _counts(y: torch.Tensor, k: int) -> list[int]:
    return torch.bincount(y, minlength=k).tolist()


def test_digits_shapes_splits_and_normalisation():
    data = load_dataset("digits")
    assert isinstance(data, Dataset) and data.name == "digits"
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    # sklearn rounds test sizes up: test = ceil(0.2 * 1797) = 360, val = ceil(0.25 * 1437) = 360, train the rest
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1077, 360, 360)
    assert data.x_train.shape == (1077, 1, 8, 8)
    for x, y in [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]:
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.is_contiguous()
    # the training split is standardised exactly; the others with the training statistics, so only roughly
    assert data.x_train.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert data.x_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    assert data.x_val.mean().item() != pytest.approx(0.0, abs=1e-5)
    # all 1797 labels are kept, and each class is split 60/20/20 within one example (stratified)
    from sklearn.datasets import load_digits

    totals = np.bincount(load_digits().target)
    parts = [_counts(y, 10) for y in (data.y_train, data.y_val, data.y_test)]
    assert np.sum(parts, axis=0).tolist() == totals.tolist()
    for share, counts in zip((0.6, 0.2, 0.2), parts):
        assert np.all(np.abs(np.array(counts) - share * totals) <= 1.5)
    assert repr(data) == "Dataset('digits', train=1077, val=360, test=360, input_shape=(1, 8, 8), num_classes=10)"


def test_split_is_fixed_by_the_seed():
    a, b, c = load_dataset(seed=0), load_dataset(seed=0), load_dataset(seed=1)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_val, c.y_val)


def test_fractions_set_the_split_sizes():
    data = load_dataset("digits", val_fraction=0.1, test_fraction=0.3)
    # test = ceil(0.3 * 1797) = 540; val = ceil(0.1 / 0.7 * 1257) = 180
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1077, 180, 540)


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_channels_last_rgb_is_standardised_with_train_statistics(tmp_path):
    # every pixel of channel c of an image of class k is 20k + 60c: the normalised values are known by hand
    y = np.repeat(np.arange(4), 10)
    x = (20 * y[:, None, None, None] + 60 * np.arange(3)[None, None, None, :]) * np.ones((1, 5, 6, 1))
    data = load_dataset(_npz(tmp_path / "blocks.npz", x=x.astype(np.uint8), y=y), val_fraction=0.25, test_fraction=0.25)
    assert data.name == "blocks" and data.input_shape == (3, 5, 6) and data.num_classes == 4
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (20, 10, 10)
    assert min(_counts(data.y_val, 4) + _counts(data.y_test, 4)) >= 2  # stratified: every class in every split
    train_raw = 20.0 * data.y_train.double()
    mean, std = train_raw.mean(), train_raw.std(unbiased=False)  # per channel the offset 60c cancels
    for x_split, y_split in [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]:
        expected = ((20.0 * y_split.double() - mean) / std).float()
        for c in range(3):
            assert torch.allclose(x_split[:, c], expected[:, None, None].expand(-1, 5, 6), atol=1e-5)


def test_npz_grayscale_and_float_images(tmp_path):
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(3), 10)
    data = load_dataset(_npz(tmp_path / "g.npz", x=rng.random((30, 7, 7)), y=y))
    assert data.input_shape == (1, 7, 7) and data.num_classes == 3
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 30


def test_shared_cifar10_extract_loads():
    path = SHARED_DATA / "cifar10_train10k.npz"
    if not path.is_file():
        pytest.skip(f"{path} is not there (../shared/data beside the checkout)")
    data = load_dataset(str(path))
    assert data.name == "cifar10_train10k" and data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.x_train.shape == (6000, 3, 32, 32) and data.x_train.dtype == torch.float32
    # 1,000 images per class split exactly 600 / 200 / 200
    assert _counts(data.y_train, 10) == [600] * 10
    assert _counts(data.y_val, 10) == [200] * 10 and _counts(data.y_test, 10) == [200] * 10
    assert torch.allclose(data.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)


def _image(path: Path, mode: str, size: tuple[int, int], value: int) -> None:
    colour = value if mode == "L" else (value, 255 - value, 0)
    Image.new(mode, size, colour).save(path)


def _folder(root: Path, modes: dict[str, str], per_class: int = 5) -> Path:
    for k, (name, mode) in enumerate(modes.items()):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            # every image 6 x 4 (W x H) except one larger one that must be resized
            size = (12, 8) if (k, i) == (1, 2) else (6, 4)
            _image(root / name / f"{i:02d}.png", mode, size, 40 * k + i)
    return root


def test_image_folder_classes_sorted_and_resized_to_the_first_image(tmp_path):
    root = _folder(tmp_path / "shapes", {"zebra": "RGB", "ant": "RGB", "mole": "RGB"})
    (root / "ant" / "notes.txt").write_text("not an image: ignored")
    data = load_dataset(str(root), val_fraction=0.2, test_fraction=0.2)
    assert data.name == "shapes" and data.num_classes == 3
    assert data.input_shape == (3, 4, 6)  # (C, H, W) of the first image, ant/00.png
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 15
    # class index = sorted name (ant 0, mole 1, zebra 2); images were written zebra, ant, mole with red 40k + i
    x = torch.cat([data.x_train, data.x_val, data.x_test])
    y = torch.cat([data.y_train, data.y_val, data.y_test])
    red = x[:, 0].mean(dim=(1, 2))
    assert red[y == 2].max() < red[y == 0].min() and red[y == 0].max() < red[y == 1].min()


def test_image_folder_grayscale_stays_gray_and_mixed_becomes_rgb(tmp_path):
    assert load_dataset(str(_folder(tmp_path / "gray", {"a": "L", "b": "L"}))).input_shape == (1, 4, 6)
    assert load_dataset(str(_folder(tmp_path / "mixed", {"a": "L", "b": "RGB"}))).input_shape == (3, 4, 6)


@pytest.mark.parametrize("kwargs, message", [
    ({"val_fraction": 0.0}, "val_fraction: must be a number strictly between 0 and 1, got 0.0"),
    ({"test_fraction": 1.0}, "test_fraction: must be a number strictly between 0 and 1"),
    ({"val_fraction": "0.2"}, "val_fraction"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, r"val_fraction \+ test_fraction: must be < 1"),
    ({"seed": -1}, "seed: must be a whole number >= 0"),
])
def test_bad_fractions_and_seed(kwargs, message):
    with pytest.raises(NasforgeError, match=message):
        load_dataset("digits", **kwargs)


def test_unknown_names_and_missing_paths(tmp_path):
    with pytest.raises(NasforgeError, match=r"'mnist' is neither a known name nor an existing path \(allowed: digits"):
        load_dataset("mnist")
    with pytest.raises(NasforgeError, match="neither a known name"):
        load_dataset(str(tmp_path / "missing.npz"))
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(NasforgeError, match=r"is not a \.npz file or a folder"):
        load_dataset(str(tmp_path / "data.csv"))


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.zeros(4, dtype=np.int64)}, "lacks array 'x'"),
    ({"x": np.zeros((4, 3, 3), np.uint8)}, "lacks array 'y'"),
    ({"x": np.zeros((4, 3, 3), np.uint8), "y": np.zeros(5, np.int64)}, r"y: expected shape \(4,\) to match x"),
    ({"x": np.zeros((4, 3, 3), np.uint8), "y": np.zeros(4)}, "y: expected integer class labels"),
    ({"x": np.zeros((4, 3, 3), np.uint8), "y": -np.ones(4, np.int64)}, r"y: expected class labels 0\.\.K-1, got -1"),
    ({"x": np.zeros((4, 3, 32, 32), np.uint8), "y": np.zeros(4, np.int64)}, r"x: expected \(N,H,W\) or channels-last"),
    ({"x": np.zeros(4), "y": np.zeros(4, np.int64)}, r"x: expected \(N,H,W\)"),
    ({"x": np.full((4, 3, 3), np.nan), "y": np.zeros(4, np.int64)}, "x: holds NaN"),
    ({"x": np.full((4, 3, 3), "a"), "y": np.zeros(4, np.int64)}, "x: expected uint8 or real numbers"),
])
def test_malformed_npz(tmp_path, arrays, message):
    with pytest.raises(NasforgeError, match=message):
        load_dataset(_npz(tmp_path / "bad.npz", **arrays))


def test_unreadable_npz_and_too_small_classes(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(NasforgeError, match="is not a readable .npz file"):
        load_dataset(str(tmp_path / "junk.npz"))
    np.save(tmp_path / "plain.npy", np.zeros(3))
    (tmp_path / "plain.npy").rename(tmp_path / "plain.npz")
    with pytest.raises(NasforgeError, match="is not a readable .npz file"):
        load_dataset(str(tmp_path / "plain.npz"))
    # one example of class 1 cannot be stratified
    path = _npz(tmp_path / "tiny.npz", x=np.zeros((6, 2, 2), np.uint8), y=np.array([0, 0, 0, 0, 0, 1]))
    with pytest.raises(NasforgeError, match="cannot split 'tiny' stratified"):
        load_dataset(path)


def test_malformed_image_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NasforgeError, match="has no class subfolders"):
        load_dataset(str(tmp_path / "empty"))
    root = _folder(tmp_path / "f", {"a": "RGB"})
    (root / "b").mkdir()
    with pytest.raises(NasforgeError, match="class folder .*b holds no images"):
        load_dataset(str(root))
    (root / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(NasforgeError, match="cannot read image .*broken.png"):
        load_dataset(str(root))


def test_torchvision_errors(tmp_path):
    with pytest.raises(NasforgeError, match="names no data set"):
        load_dataset("torchvision:")
    with pytest.raises(NasforgeError, match="torchvision root .* is not a folder"):
        load_dataset(f"torchvision:CIFAR10:{tmp_path / 'nowhere'}")
    # an existing but empty root: "not installed" without torchvision, "not found under" with it
    with pytest.raises(NasforgeError, match="torchvision, which is not installed|not found under"):
        load_dataset(f"torchvision:CIFAR10:{tmp_path}")
