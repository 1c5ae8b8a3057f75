"""The training data: any TuSimple-layout folder, real or synthetic, as a torch Dataset.

Each item is the frame resized to the training size, the label map rendered from the polylines at that
size (labels.render_lane_map: Gaussian ridges of sigma px, peak 1) and the item's index, which leads to
the raw lanes and h_samples in `dataset.labels` for the official metric.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from elgan_ray.config import IMAGE_HEIGHT, IMAGE_WIDTH
from elgan_ray.data.labels import LaneLabel, load_split, render_lane_map
from elgan_ray.errors import UserError
from elgan_ray.files import read_regular

# cv2 can decode a JPEG at 1/2, 1/4 or 1/8 of its size by scaling in the DCT domain: at 1/8 a frame decodes
# 5-6x faster than at full size (1.5 ms against 8.5 ms here), and the scaling averages pixels like INTER_AREA.
REDUCED_DECODE = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_reduction(height: int, width: int) -> int:
    """The largest decode reduction that still leaves at least (height, width) pixels to resize from."""
    fits = [r for r in REDUCED_DECODE if IMAGE_HEIGHT // r >= height and IMAGE_WIDTH // r >= width]
    return max(fits, default=1)


MAX_FRAME_BYTES = 64 << 20  # a 1280x720 JPEG is 100-300 KB; even an uncompressed frame is under 3 MB

# libjpeg reports damaged data (a flipped bit, a cut-off file) only as a warning on stderr and still returns a
# frame, mostly grey past the damage; these are the warnings that mean the pixels are not the file's.
CORRUPTION_WARNINGS = ("Corrupt JPEG data", "Premature end of JPEG file")
_DECODE_LOCK = threading.Lock()  # one decode at a time may borrow file descriptor 2
_capture: tuple[int, Any] | None = None  # (pid, temporary file): forked loader workers each open their own


def read_frame(path: str | Path, reduction: int = 1) -> np.ndarray:
    """A TuSimple frame as BGR uint8 (720/reduction, 1280/reduction, 3); UserError when it is unreadable, damaged
    or of another size. At a reduction the size check is at that scale (a frame a few pixels off could pass)."""
    data = np.frombuffer(read_regular(path, MAX_FRAME_BYTES, "image"), np.uint8)  # a FIFO is refused as such
    image, warnings = decode_checked(data, REDUCED_DECODE[reduction]) if data.size else (None, [])
    if image is None:
        raise UserError(path, "unreadable image (not a JPEG/PNG cv2 can decode)")
    if warnings:
        raise UserError(path, f"damaged image: the decoder reports '{warnings[0]}'")
    if image.shape[:2] != (-(-IMAGE_HEIGHT // reduction), -(-IMAGE_WIDTH // reduction)):
        full = image if reduction == 1 else cv2.imdecode(data, cv2.IMREAD_COLOR)  # its true size, for the message
        rule = f"image is {full.shape[1]}x{full.shape[0]}, TuSimple frames are {IMAGE_WIDTH}x{IMAGE_HEIGHT}"
        raise UserError(path, rule)
    return image


def decode_checked(data: np.ndarray, flags: int) -> tuple[np.ndarray | None, list[str]]:
    """cv2.imdecode, and the corruption warnings libjpeg printed while decoding.

    OpenCV gives libjpeg's warnings no other way out than the C stderr, so file descriptor 2 points at a
    temporary file for the length of the decode; whatever else lands there (another thread's output) is
    passed on to the real stderr afterwards. A process without a usable fd 2 decodes unchecked.
    """
    global _capture
    with _DECODE_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            return cv2.imdecode(data, flags), []
        if _capture is None or _capture[0] != os.getpid():
            _capture = (os.getpid(), tempfile.TemporaryFile())
        capture = _capture[1]
        capture.seek(0)
        capture.truncate()
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            image = cv2.imdecode(data, flags)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        lines = capture.read().decode("utf-8", "replace").splitlines()
    corrupt = [line.strip() for line in lines if line.startswith(CORRUPTION_WARNINGS)]
    other = [line for line in lines if not line.startswith(CORRUPTION_WARNINGS)]
    if other:
        print("\n".join(other), file=sys.stderr)
    return image, corrupt


class TuSimpleDataset(Dataset):
    """Frames of one split ("train", "val" or "test") at (height, width), with their label maps.

    With cache=True the resized frame (uint8) and label map stay in memory after their first load: training
    makes many passes over a few hundred frames, and decoding a 1280x720 JPEG costs more than a step's share.
    """

    def __init__(self, root: str | Path, split: str, height: int, width: int, sigma: float = 1.0, cache: bool = True):
        self.root = Path(root)
        self.split = split
        self.height, self.width, self.sigma = height, width, sigma
        self.labels: list[LaneLabel] = load_split(self.root, split, check_images=True)
        self.cache = cache
        self.reduction = decode_reduction(height, width)
        self._images: dict[int, np.ndarray] = {}  # index -> (H, W, 3) uint8 RGB
        self._maps: dict[int, np.ndarray] = {}  # index -> (H, W) float32

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 (H, W, 3), label map float32 (H, W)) of one frame, from the cache when it is there."""
        if index in self._images:
            return self._images[index], self._maps[index]
        label = self.labels[index]
        bgr = read_frame(self.root / label.raw_file, self.reduction)
        # INTER_AREA averages the pixels a training pixel covers: no aliasing of thin far markings.
        small = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        image = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        lane_map = render_lane_map(label.lanes, label.h_samples, self.height, self.width, self.sigma)
        if self.cache:
            self._images[index], self._maps[index] = image, lane_map
        return image, lane_map

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.labels):
            raise IndexError(index)
        image, lane_map = self.load(index)
        # The conversions run in numpy: torch's intra-op threads make these tiny ops slow on a busy machine
        # (DataLoader workers, Ray trials sharing cores). Both arrays are fresh copies, so the cache stays safe.
        chw = np.multiply(image.transpose(2, 0, 1), np.float32(1 / 255), dtype=np.float32)  # (3, H, W) RGB
        return {
            "image": torch.from_numpy(chw),  # (3, H, W) in [0, 1]
            "label": torch.from_numpy(lane_map[None].copy()),  # (1, H, W)
            "index": index,
        }
