"""TuSimpleDataset: any TuSimple-layout folder as (image, label map, index), and its errors on bad data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from elgan_ray.data.labels import render_lane_map
from elgan_ray.data.tusimple import TuSimpleDataset
from elgan_ray.errors import UserError


def test_items_have_the_training_size_and_their_label_maps(data_tiny):
    dataset = TuSimpleDataset(data_tiny, "train", 64, 128)
    assert len(dataset) == 4
    item = dataset[1]
    assert item["index"] == 1
    image, label = item["image"], item["label"]
    assert image.shape == (3, 64, 128) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert label.shape == (1, 64, 128) and label.dtype == torch.float32
    raw = dataset.labels[1]
    expected = render_lane_map(raw.lanes, raw.h_samples, 64, 128)
    assert np.array_equal(label[0].numpy(), expected)
    assert label.max() > 0.9  # lanes are there


def test_splits_and_a_batch_through_a_dataloader(data_tiny):
    assert [len(TuSimpleDataset(data_tiny, s, 32, 64)) for s in ("train", "val", "test")] == [4, 2, 2]
    batch = next(iter(DataLoader(TuSimpleDataset(data_tiny, "train", 128, 256), batch_size=4)))
    assert batch["image"].shape == (4, 3, 128, 256)
    assert batch["label"].shape == (4, 1, 128, 256)
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_image_is_rgb(data_tiny):
    import cv2

    from elgan_ray.data.tusimple import read_frame

    dataset = TuSimpleDataset(data_tiny, "val", 72, 128)
    bgr = read_frame(data_tiny / dataset.labels[0].raw_file, dataset.reduction)
    rgb = cv2.resize(bgr, (128, 72), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.array_equal((dataset[0]["image"].permute(1, 2, 0).numpy() * 255).round(), rgb)


def test_cache_keeps_items_and_protects_them(data_tiny, tmp_path):
    root = shutil.copytree(data_tiny, tmp_path / "copy")
    dataset = TuSimpleDataset(root, "val", 32, 64, cache=True)
    first = dataset[0]
    first["label"].zero_()  # a caller that writes into its batch must not change the cached map
    (root / dataset.labels[0].raw_file).unlink()  # from now on only the cache can answer
    again = dataset[0]
    assert torch.equal(again["image"], first["image"]) and again["label"].max() > 0.9
    uncached = TuSimpleDataset(data_tiny, "val", 32, 64, cache=False)
    uncached[0]
    assert not uncached._images


def test_missing_image_is_found_when_the_dataset_is_made(data_tiny, tmp_path):
    root = shutil.copytree(data_tiny, tmp_path / "copy")
    raw = TuSimpleDataset(root, "val", 32, 64).labels[1].raw_file
    (root / raw).unlink()
    with pytest.raises(UserError) as info:
        TuSimpleDataset(root, "val", 32, 64)
    assert str(info.value) == f"{root / 'label_data_0601.json'}:2: image '{raw}' not found under {root}"


@pytest.mark.parametrize(
    "content, rule",
    [(b"", "unreadable image"), (b"not a jpeg at all", "unreadable image"), (None, "image is 640x360")],
)
def test_unreadable_or_wrong_size_image(data_tiny, tmp_path, content, rule):
    import cv2

    root = shutil.copytree(data_tiny, tmp_path / "copy")
    dataset = TuSimpleDataset(root, "test", 32, 64)
    path = root / dataset.labels[0].raw_file
    if content is None:
        path.write_bytes(cv2.imencode(".jpg", np.zeros((360, 640, 3), np.uint8))[1].tobytes())
    else:
        path.write_bytes(content)
    with pytest.raises(UserError) as info:
        dataset[0]
    assert str(info.value).startswith(f"{path}: {rule}")


def test_bad_label_file_and_missing_split(data_tiny, tmp_path):
    root = shutil.copytree(data_tiny, tmp_path / "copy")
    lines = (root / "test_label.json").read_text().splitlines()
    (root / "test_label.json").write_text(lines[0] + "\n" + lines[1][:-5] + "\n")
    with pytest.raises(UserError, match=r"test_label.json:2: malformed JSON"):
        TuSimpleDataset(root, "test", 32, 64)
    (root / "label_data_0601.json").unlink()
    with pytest.raises(UserError, match="label_data_0601.json: label file of split 'val' not found"):
        TuSimpleDataset(root, "val", 32, 64)


def test_reduced_decoding_matches_a_full_decode(data_tiny):
    import cv2

    from elgan_ray.data.tusimple import decode_reduction, read_frame

    assert [decode_reduction(*size) for size in [(64, 128), (100, 200), (128, 256), (720, 1280)]] == [8, 4, 4, 1]
    dataset = TuSimpleDataset(data_tiny, "val", 64, 128, cache=False)
    full = read_frame(data_tiny / dataset.labels[0].raw_file)
    expected = cv2.cvtColor(cv2.resize(full, (128, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    image, _ = dataset.load(0)
    assert image.shape == expected.shape
    assert np.abs(image.astype(int) - expected.astype(int)).mean() < 2  # of 255: the DCT scaling averages too
