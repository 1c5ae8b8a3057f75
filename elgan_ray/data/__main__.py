"""`python -m elgan_ray.data synth|show`: write a synthetic TuSimple-layout dataset, or look at any dataset."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from elgan_ray.errors import UserError, run_cli

LAYOUT = """\
layout (TuSimple's own, so real and synthetic data load through the same code):
  DIR/clips/<sequence>/<id>/20.jpg   1280x720 frames
  DIR/label_data_0313.json           train: sequences 0313-1 and 0313-2
  DIR/label_data_0531.json           train: sequence 0531
  DIR/label_data_0601.json           validation: the held-out sequence 0601, as in TuSimple
  DIR/test_label.json                test: sequence 0530
  DIR/synthetic.json                 what generated the folder (seed, counts)
Each label file has one JSON object per line: {"lanes": [[x, ...], ...], "h_samples": [160, 170, ..., 710],
"raw_file": "clips/..."}: one x per h_sample for each of the frame's 2 to 5 lanes, -2 where a lane is absent
(above where it becomes visible, outside the image). Lanes are labelled through dash gaps and occlusions.
"""

SYNTH_HELP = """\
Write a synthetic dataset in TuSimple's exact on-disk layout. The frames look like a dash camera on a
highway: a perspective road toward a vanishing point, solid, dashed and dotted markings in white and
yellow, curves, vehicles hiding markings, tree and overpass shadows, worn paint, tyre tracks and seams,
haze, lighting changes, blur, sensor noise and JPEG artefacts: hard enough that a per-pixel
cross-entropy network gives thick, broken lines (the problem EL-GAN addresses). The same seed gives
byte-identical label files (and frames). The folder appears complete or not at all; a progress bar on
stderr shows the frames as they are written.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m elgan_ray.data",
        description="TuSimple-format lane data: generate a synthetic set (synth) or draw one's frames (show).",
        epilog=LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser(
        "synth",
        help="write a synthetic dataset",
        description=SYNTH_HELP,
        epilog=LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("--out", required=True, help="folder to create (may be an earlier synthetic set)")
    synth.add_argument("--train", type=int, default=400, help="training frames, over 0313-1/0313-2/0531 (400)")
    synth.add_argument("--val", type=int, default=100, help="validation frames, sequence 0601 (100)")
    synth.add_argument("--test", type=int, default=100, help="test frames, sequence 0530 (100)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (0)")
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    show = sub.add_parser(
        "show",
        help="draw frames with their lanes into one picture",
        description="Draw frames of a TuSimple-layout folder (real or synthetic) with their labelled lanes, each "
        "with its training label map (128x256) inset, as a grid in one PNG.",
    )
    show.add_argument("dir", help="a TuSimple-layout folder")
    show.add_argument("--out", required=True, help="picture to write (.png or .jpg)")
    show.add_argument("--n", type=int, default=8, help="frames to draw, spread over the split (8)")
    show.add_argument("--split", default="val", help="train, val or test (val)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "synth":
        from elgan_ray.data.synthetic import write_synthetic_dataset

        start = time.perf_counter()
        out = write_synthetic_dataset(args.out, args.train, args.val, args.test, args.seed, progress=not args.quiet)
        n = args.train + args.val + args.test
        print(f"{n} frames -> {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    else:
        if args.n < 1:
            raise UserError("--n", f"must be >= 1, got {args.n}")
        if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise UserError(args.out, "the picture must be a .png or .jpg file")
        from elgan_ray.files import atomic_write_bytes, check_writable

        check_writable(args.out, "file")

        picture = show_grid(args.dir, args.split, args.n)
        ok, data = cv2.imencode(Path(args.out).suffix.lower(), picture)
        assert ok, "cv2 failed to encode the picture"
        atomic_write_bytes(args.out, data.tobytes())
        print(f"{args.out}: {picture.shape[1]}x{picture.shape[0]}", file=sys.stderr)
    return 0


def show_grid(root: str | Path, split: str, n: int, columns: int = 2, tile: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A BGR picture of up to n frames of a split, spread evenly, each with its lanes and label map drawn."""
    from elgan_ray.data.labels import load_split, render_lane_map
    from elgan_ray.data.tusimple import read_frame

    labels = load_split(root, split)
    picks = np.unique(np.linspace(0, len(labels) - 1, min(n, len(labels))).round().astype(int))
    colours = [(0, 255, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0), (0, 128, 255)]
    tiles = []
    for i in picks.tolist():
        label = labels[i]
        frame = read_frame(Path(root) / label.raw_file)
        for k, lane in enumerate(label.lanes):
            pts = [(x, y) for x, y in zip(lane, label.h_samples, strict=True) if x >= 0]
            colour = colours[k % len(colours)]
            if len(pts) > 1:
                cv2.polylines(frame, [np.int32(pts)], False, colour, 1, cv2.LINE_AA)
            for p in pts:
                cv2.circle(frame, p, 4, colour, 1, cv2.LINE_AA)
        small = cv2.resize(frame, tile, interpolation=cv2.INTER_AREA)
        lane_map = render_lane_map(label.lanes, label.h_samples, 128, 256)  # the cpu preset's training size
        inset = cv2.applyColorMap((lane_map * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)
        small[4 : 4 + 128, tile[0] - 260 : tile[0] - 4] = inset
        cv2.putText(small, label.raw_file, (6, tile[1] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        tiles.append(small)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    return np.vstack([np.hstack(tiles[r : r + columns]) for r in range(0, len(tiles), columns)])


if __name__ == "__main__":
    sys.exit(run_cli(main))
