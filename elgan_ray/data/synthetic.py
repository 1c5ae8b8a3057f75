"""A synthetic dataset in TuSimple's exact layout: dash-camera highway frames with their lane labels.

Stands in for the real benchmark in tests, smoke runs and the embedded default study data. The scenes are
made hard in the ways the real data is: a perspective road to a vanishing point, solid, dashed and dotted
markings in white and yellow, curvature, vehicles hiding markings, shadows, worn paint, haze, lighting,
blur, sensor noise and JPEG artefacts, plus lane-like distractors (tyre tracks, seams, barriers).
Labels follow the real annotation: the lane centre at each h_sample from where the lane becomes visible
down to the image bottom, through dash gaps and occlusions; -2 above that and outside the image.

Geometry: a flat road seen by a camera `cam_h` metres up with focal length F_PX. A ground point (X, Z)
projects to y = horizon + F_PX * cam_h / Z, x = vp_x + F_PX * X / Z + curve * Z / (F_PX * cam_h); the last
term bends every lane alike (constant road curvature). Per image row, with dy = y - horizon, a lane at X
lies at x = vp_x + X * dy / cam_h + curve / dy: the classic hyperbola lane model.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from elgan_ray.data.labels import H_SAMPLES, IMAGE_HEIGHT, IMAGE_WIDTH, VALIDATION_SEQUENCE
from elgan_ray.errors import UserError
from elgan_ray.files import atomic_directory

EMBEDDED_VERSION = "v1"  # bump when the generator changes: cached sets and pre-trainings are keyed on it
EMBEDDED_SIZES = (400, 100, 100)  # train, val, test frames of the embedded default dataset
MARKER = "synthetic.json"  # says what made a folder, so `synth` may overwrite its own output but no other
TRAIN_SEQUENCES = ("0313-1", "0313-2", "0531")  # as TuSimple: the two 0313 clips share label_data_0313.json
TEST_SEQUENCE = "0530"
F_PX = 1000.0  # focal length in pixels (about 65 degrees across 1280 px)
H, W = IMAGE_HEIGHT, IMAGE_WIDTH
PAINT = {"white": (0.93, 0.93, 0.92), "yellow": (0.15, 0.72, 0.92)}  # BGR reflectance of fresh paint


@dataclass(frozen=True)
class Marking:
    x: float  # lateral position of the marking's centre, metres (camera at 0, right positive)
    width: float  # metres
    color: str  # "white" | "yellow"
    dash: float  # painted length per period, metres (== period for a solid line)
    period: float
    phase: float
    alpha: float  # paint opacity: low is worn
    double: bool  # two thin lines (a yellow double line), labelled at their centre
    start_dy: float  # rows below the horizon where the marking becomes visible (and labelled)


@dataclass(frozen=True)
class Vehicle:
    x: float  # lateral centre, metres
    z: float  # distance of its rear, metres
    width: float
    height: float
    length: float
    color: tuple[float, float, float]  # BGR in [0, 1]
    truck: bool


@dataclass(frozen=True)
class Scene:
    horizon: float  # image row of the horizon
    vp_x: float  # image column of the vanishing point
    cam_h: float  # camera height, metres
    curve: float  # curvature term, pixels * rows
    markings: tuple[Marking, ...]
    road: tuple[float, float]  # lateral extent of the asphalt, metres
    vehicles: tuple[Vehicle, ...]
    shadows: tuple[tuple[np.ndarray, float], ...]  # (ground outline (N, 2) of (x, z) metres, strength)
    tracks: float  # darkness of tyre tracks in each lane (0: none)
    barrier: bool  # concrete median barrier on the left edge
    guardrail: bool  # metal guardrail on the right edge
    sky: tuple[float, float, float]
    terrain: tuple[float, float, float]
    asphalt: float  # road brightness
    haze: float  # 0 clear .. 1 strong
    gain: float  # global exposure
    gamma: float
    cast: tuple[float, float, float]  # per-channel white balance error
    blur: float  # Gaussian blur sigma, pixels
    noise: float  # sensor noise std, 0..255 units
    jpeg: int  # JPEG quality


# -- scenes: parameters only, no pixels ------------------------------------------------------------


def sample_scene(rng: np.random.Generator, look: dict) -> Scene:
    """A random highway scene; `look` holds the sequence's shared appearance (time of day, weather)."""
    while True:  # redraw the rare layouts that leave fewer than 2 visible lanes
        scene = _draw_scene(rng, look)
        if 2 <= len(scene.markings):
            return scene


def _draw_scene(rng: np.random.Generator, look: dict) -> Scene:
    cam_h = rng.uniform(2.3, 3.0)
    lane_w = rng.uniform(3.4, 3.9)
    n = int(rng.choice([2, 3, 4, 5], p=[0.1, 0.3, 0.4, 0.2]))
    ego = int(rng.integers(0, n - 1))  # the camera drives between markings ego and ego + 1
    offset = rng.normal(0, 0.3) if rng.random() < 0.85 else rng.uniform(-1.6, 1.6)  # lane change now and then
    xs = [(j - ego - 0.5) * lane_w - offset for j in range(n)]
    horizon = rng.uniform(245, 300)
    vp_x = W / 2 + rng.normal(0, 70)
    curve = rng.uniform(-4500, 4500) * (rng.random() < 0.7)
    start_dy = rng.uniform(16, 45)  # where paint becomes visible: lanes are 25+ px apart there
    yellow_left = rng.random() < look["yellow"]
    markings = []
    for j, x in enumerate(xs):
        edge = j in (0, n - 1)
        kind = rng.choice(["solid", "dashed", "dotted"], p=[0.85, 0.15, 0.0] if edge else [0.12, 0.7, 0.18])
        dash, period = {"solid": (1.0, 1.0), "dashed": (rng.uniform(2.5, 4), rng.uniform(9, 14))}.get(
            str(kind), (0.12, rng.uniform(1.0, 1.6))
        )
        color = "yellow" if (j == 0 and yellow_left) else "white"
        worn = rng.random() < 0.18
        marking = Marking(
            x=x,
            width=0.11 if kind == "dotted" else rng.uniform(0.1, 0.22),
            color=color,
            dash=dash,
            period=period,
            phase=rng.uniform(0, period),
            alpha=rng.uniform(0.2, 0.45) if worn else rng.uniform(0.65, 1.0),
            double=color == "yellow" and rng.random() < 0.3,
            start_dy=start_dy * rng.uniform(1.0, 1.25) * (1.6 if worn else 1.0),
        )
        if _visible_samples(horizon, vp_x, cam_h, curve, marking) >= 4:  # else it is not drawn either
            markings.append(marking)
    road = (min(xs) - rng.uniform(0.4, 3.0), max(xs) + rng.uniform(0.4, 3.0))
    vehicles = _draw_vehicles(rng, xs, lane_w, road, look)
    shadows = tuple(_draw_shadows(rng, road, look))
    return Scene(
        horizon=horizon,
        vp_x=vp_x,
        cam_h=cam_h,
        curve=curve,
        markings=tuple(markings),
        road=road,
        vehicles=vehicles,
        shadows=shadows,
        tracks=rng.uniform(0.03, 0.12) * (rng.random() < 0.6),
        barrier=rng.random() < 0.55,
        guardrail=rng.random() < 0.6,
        sky=tuple(np.clip(np.asarray(look["sky"]) + rng.normal(0, 0.04, 3), 0, 1)),
        terrain=tuple(np.clip(np.asarray(look["terrain"]) + rng.normal(0, 0.04, 3), 0, 1)),
        asphalt=float(np.clip(look["asphalt"] + rng.normal(0, 0.05), 0.18, 0.65)),
        haze=float(np.clip(look["haze"] + rng.normal(0, 0.1), 0, 1)),
        gain=float(look["gain"] * rng.uniform(0.75, 1.25)),
        gamma=rng.uniform(0.8, 1.25),
        cast=tuple(rng.uniform(0.92, 1.08, 3)),
        blur=rng.uniform(0.3, 1.6) if rng.random() < 0.6 else 0.0,
        noise=rng.uniform(2, 9),
        jpeg=int(rng.integers(55, 92)),
    )


def _draw_vehicles(
    rng: np.random.Generator, xs: list[float], lane_w: float, road: tuple[float, float], look: dict
) -> tuple[Vehicle, ...]:
    """A few vehicles in the lanes (beside the camera's lane they hide markings), far ones first."""
    vehicles: list[Vehicle] = []
    outer = [c for c in (xs[0] - lane_w / 2, xs[-1] + lane_w / 2) if road[0] + 1 < c < road[1] - 1]
    centres = [(a + b) / 2 for a, b in zip(xs, xs[1:], strict=False)] + outer  # lanes beyond the labelled ones too
    for _ in range(int(rng.poisson(look["traffic"]))):
        truck = rng.random() < 0.3
        x = float(rng.choice(centres)) + rng.normal(0, 0.35)
        z = rng.uniform(6, 70) if abs(x) > lane_w / 2 else rng.uniform(14, 80)  # not on the bonnet
        length = rng.uniform(10, 14) if truck else rng.uniform(4.2, 5.0)
        if any(abs(v.x - x) < 2.5 and z < v.z + v.length + 4 and v.z < z + length + 4 for v in vehicles):
            continue  # would overlap another vehicle
        color = rng.choice(
            [(0.85, 0.85, 0.85), (0.1, 0.1, 0.1), (0.45, 0.45, 0.48), (0.15, 0.15, 0.6), (0.55, 0.3, 0.1)]
        )
        vehicles.append(
            Vehicle(
                x=x,
                z=z,
                width=rng.uniform(2.4, 2.6) if truck else rng.uniform(1.7, 2.0),
                height=rng.uniform(3.4, 4.0) if truck else rng.uniform(1.35, 1.7),
                length=length,
                color=tuple(np.clip(np.asarray(color) + rng.normal(0, 0.05, 3), 0, 1)),
                truck=truck,
            )
        )
    return tuple(sorted(vehicles, key=lambda v: -v.z))


def _draw_shadows(rng: np.random.Generator, road: tuple[float, float], look: dict):
    """Ground patches in shade: tree crowns from the road sides, now and then an overpass across the road."""
    for _ in range(int(rng.poisson(look["shadows"]))):
        for _ in range(int(rng.integers(1, 4))):  # a few crowns side by side
            x = road[int(rng.integers(0, 2))] + rng.normal(0, 3)
            z, rx, rz = rng.uniform(5, 60), rng.uniform(1.5, 5), rng.uniform(2, 8)
            angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
            radius = np.clip(1 + 0.25 * rng.standard_normal(20), 0.5, 1.5)  # ragged crowns
            outline = np.stack([x + rx * radius * np.cos(angle), z + rz * radius * np.sin(angle)], 1)
            yield outline, rng.uniform(0.3, 0.6)
    if rng.random() < 0.12:
        z0 = rng.uniform(6, 40)
        yield _box(road[0] - 5, road[1] + 5, z0, z0 + rng.uniform(8, 20)), rng.uniform(0.5, 0.7)


def _box(x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Outline of a ground rectangle, its long sides sampled so that the road's curvature bends them."""
    z = np.geomspace(max(z0, 1.0), max(z1, 1.1), 12)
    return np.concatenate([np.stack([np.full(12, x0), z], 1), np.stack([np.full(12, x1), z], 1)[::-1]])


def lane_x(scene: Scene, x: float | np.ndarray, y: np.ndarray) -> np.ndarray:
    """Image column of the ground line at lateral position x (metres) on image rows y (below the horizon)."""
    dy = np.asarray(y, np.float64) - scene.horizon
    return scene.vp_x + x * dy / scene.cam_h + scene.curve / dy


def _visible_samples(horizon: float, vp_x: float, cam_h: float, curve: float, marking: Marking) -> int:
    y = np.asarray(H_SAMPLES, np.float64)
    dy = y - horizon
    x = vp_x + marking.x * dy / cam_h + curve / np.where(dy > 0, dy, 1)
    return int(((dy >= marking.start_dy) & (x >= 0) & (x < W)).sum())


def scene_labels(scene: Scene) -> list[list[int]]:
    """TuSimple lanes: each marking's centre x at each h_sample, -2 above its start or outside the image."""
    y = np.asarray(H_SAMPLES, np.float64)
    lanes = []
    for m in scene.markings:
        x = lane_x(scene, m.x, np.maximum(y, scene.horizon + 1))
        ok = (y - scene.horizon >= m.start_dy) & (x >= 0) & (x <= W - 1)
        lanes.append(np.where(ok, np.rint(x), -2).astype(int).tolist())
    return lanes


# -- pixels -------------------------------------------------------------------------------------------


class TextureBank:
    """Noise fields made once per dataset; each frame views a random crop of them (fast and seeded)."""

    PAD = 256

    def __init__(self, seed: int):
        rng = np.random.default_rng([seed, 7])
        shape = (H + self.PAD, W + self.PAD)
        self.grain = rng.standard_normal(shape, dtype=np.float32)
        coarse = rng.standard_normal((shape[0] // 24, shape[1] // 24), dtype=np.float32)
        blotch = cv2.resize(coarse, shape[::-1], interpolation=cv2.INTER_CUBIC)
        self.blotch = blotch / blotch.std()
        self.sensor = rng.standard_normal((*shape, 3), dtype=np.float32)
        yn, xn = np.mgrid[-1 : 1 : H * 1j, -1 : 1 : W * 1j].astype(np.float32)
        self.radius2 = (xn**2 + yn**2) / 2  # 0 at the centre, 1 in the corners: for the vignette

    def crop(self, field: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        oy, ox = rng.integers(0, self.PAD, 2)
        return field[oy : oy + H, ox : ox + W]


def render_scene(scene: Scene, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    """The 1280x720 BGR uint8 frame of a scene."""
    img = _background(scene, rng, bank)  # (H, W, 3) float32 in [0, 1]
    blotch = bank.crop(bank.blotch, rng)
    for m in scene.markings:
        rows, cols, alpha = _strip(scene, m.x, m.width, m.start_dy - 3, m.dash, m.period, m.phase, m.double)
        wear = np.clip(1.0 + 0.35 * blotch[rows, cols] - (0.3 if m.alpha < 0.5 else 0.0), 0.0, 1.0)
        a = (alpha * m.alpha * wear)[:, None]  # (N, 1)
        img[rows, cols] += (np.asarray(PAINT[m.color], np.float32) - img[rows, cols]) * a
    _apply_shadows(img, scene)
    frame = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if scene.barrier:
        _draw_barrier(frame, scene)
    if scene.guardrail:
        _draw_guardrail(frame, scene)
    for vehicle in scene.vehicles:
        _draw_vehicle(frame, scene, vehicle)
    return _camera(frame, scene, rng, bank)


def _background(scene: Scene, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    """Sky, tree line, terrain and the asphalt with its tyre tracks, seams and ghost paint."""
    hz = int(np.clip(np.ceil(scene.horizon), 1, H - 1))  # first ground row
    y = np.arange(hz, dtype=np.float32)[:, None, None]  # (hz, 1, 1) sky rows
    t = y / scene.horizon
    sky_rows = np.asarray(scene.sky, np.float32) * (0.75 + 0.3 * t) + 0.15 * t  # bright haze at the horizon
    img = np.empty((H, W, 3), np.float32)
    img[:hz] = sky_rows
    # Tree line / hills just above the horizon: a smooth random skyline.
    heights = cv2.resize(rng.uniform(0, 1, (1, 24)).astype(np.float32), (W, 1), interpolation=cv2.INTER_CUBIC)[0]
    skyline = scene.horizon - 4 - np.clip(heights, 0, 1) * rng.uniform(10, 45)
    img[:hz][y[:, :, 0] >= skyline[None, :]] = np.asarray(scene.terrain, np.float32) * 0.55
    # Ground: terrain everywhere, asphalt on the road polygon (antialiased edges); textures mixed per pixel.
    road8 = np.zeros((H, W), np.uint8)
    ys = np.linspace(scene.horizon + 2, H + 40, 160)
    left, right = lane_x(scene, scene.road[0], ys), lane_x(scene, scene.road[1], ys)
    poly = np.concatenate([np.stack([left, ys], 1), np.stack([right, ys], 1)[::-1]])
    cv2.fillPoly(road8, [np.rint(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    road = road8[hz:].astype(np.float32) * (1 / 255)  # (G, W)
    grain, blotch = bank.crop(bank.grain, rng)[hz:], bank.crop(bank.blotch, rng)[hz:]
    on_terrain = (1 - road) * (1 + 0.09 * blotch + 0.12 * grain)
    on_road = road * (1 + 0.04 * blotch + 0.05 * grain)
    asphalt = scene.asphalt * np.asarray([1.0, 0.99, 0.97], np.float32)
    img[hz:] = _colorize(on_terrain, scene.terrain) + _colorize(on_road, asphalt)
    # Lane-like distractors: tyre tracks in every lane, a sealed seam, old paint. None is labelled.
    xs = sorted(m.x for m in scene.markings)
    centres = [(a + b) / 2 for a, b in zip(xs, xs[1:], strict=False)]
    for c in centres if scene.tracks > 0 else []:
        for side in (-0.85, 0.85):
            rows, cols, alpha = _strip(scene, c + side, 0.55, 20, 1, 1, 0, False)
            img[rows, cols] *= (1 - scene.tracks * alpha)[:, None]
    if rng.random() < 0.35 and centres:  # a crack sealed with tar
        rows, cols, alpha = _strip(scene, rng.choice(centres) + rng.normal(0, 0.8), 0.06, 25, 1, 1, 0, False)
        img[rows, cols] *= (1 - 0.45 * alpha)[:, None]
    if rng.random() < 0.12 and centres:
        rows, cols, alpha = _strip(scene, rng.choice(centres) + rng.normal(0, 0.4), 0.15, 30, 3, 12, 0, False)
        img[rows, cols] += (0.75 - img[rows, cols]) * (0.12 * alpha)[:, None]
    return img


def _strip(
    scene: Scene, x: float, width: float, start_dy: float, dash: float, period: float, phase: float, double: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels covered by a painted strip on the ground: (rows, cols, coverage in [0, 1]), flat arrays.

    Antialiased across (the overlap of each pixel with the strip) and along (the fraction of the row's
    ground distance that is painted, so far-away dashes fade into a faint line as in a real camera).
    """
    y = np.arange(int(np.ceil(scene.horizon + start_dy)), H, dtype=np.float64)  # (R,)
    dy = y - scene.horizon
    centre = lane_x(scene, x, y)
    half = width / 2 * dy / scene.cam_h
    offsets = (-1.6, 1.6) if double else (0.0,)  # a double line: two strips, 1.6 widths from the centre
    k = int(np.ceil(half[-1] * (1 + 2 * 1.6 * double))) + 2
    cols = np.rint(centre).astype(np.int64)[:, None] + np.arange(-k, k + 1)  # (R, K)
    cover = np.zeros(cols.shape)
    for off in offsets:
        lo, hi = (centre + off * 2 * half - half)[:, None], (centre + off * 2 * half + half)[:, None]
        cover += np.clip(np.minimum(cols + 0.5, hi) - np.maximum(cols - 0.5, lo), 0, 1)
    if dash < period:
        z = F_PX * scene.cam_h / np.stack([dy + 0.5, dy - 0.5])  # (2, R) ground distance at the row's edges
        painted = np.floor((z + phase) / period) * dash + np.minimum((z + phase) % period, dash)
        cover *= ((painted[1] - painted[0]) / (z[1] - z[0]))[:, None]
    cover *= np.clip(dy - start_dy, 0, 4)[:, None] / 4  # fade in over a few rows
    rows = np.broadcast_to(y.astype(np.int64)[:, None], cols.shape)
    keep = (cover > 0.004) & (cols >= 0) & (cols < W)
    return rows[keep], cols[keep], cover[keep].astype(np.float32)


def _ground_poly(scene: Scene, outline: np.ndarray) -> np.ndarray:
    """Image outline, in 1/16 pixels for cv2's shift=4, of a ground outline of (x, z) metres."""
    y = scene.horizon + F_PX * scene.cam_h / np.maximum(outline[:, 1], 1.0)
    return np.rint(np.stack([lane_x(scene, outline[:, 0], y), y], 1) * 16).astype(np.int32)


def _apply_shadows(img: np.ndarray, scene: Scene) -> None:
    """Darken the ground under trees, overpasses and vehicles; soft edges (penumbra) by a blur."""
    patches = list(scene.shadows) + [
        (_box(v.x - v.width / 2 - 0.1, v.x + v.width / 2 + 0.3, v.z - 0.3, v.z + v.length), 0.65)
        for v in scene.vehicles
    ]
    if not patches:
        return
    shade = np.zeros((H, W), np.uint8)
    for outline, strength in sorted(patches, key=lambda p: p[1]):  # the darkest wins where they overlap
        cv2.fillPoly(shade, [_ground_poly(scene, outline)], int(strength * 255), cv2.LINE_AA, 4)
    light = 1.0 - cv2.GaussianBlur(shade, (0, 0), 3.0).astype(np.float32) * (1 / 255)
    img *= cv2.cvtColor(light, cv2.COLOR_GRAY2BGR)


def _colorize(gray: np.ndarray, color) -> np.ndarray:
    """(h, w) float32 times a BGR colour -> (h, w, 3); spelled out because numpy's broadcast over a last
    axis of 3 is several times slower than this."""
    h, w = gray.shape
    return (cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).reshape(h, w * 3) * np.tile(np.float32(color), w)).reshape(h, w, 3)


def _project(scene: Scene, x: float, height: float, z: float) -> tuple[float, float]:
    """Image point of the world point x metres across, `height` metres up, z metres ahead."""
    y = scene.horizon + F_PX * (scene.cam_h - height) / z
    return scene.vp_x + F_PX * x / z + scene.curve * z / (F_PX * scene.cam_h), y


def _fill(frame: np.ndarray, points: list[tuple[float, float]], color) -> None:
    pts = np.rint(np.asarray(points) * 16).astype(np.int32)
    cv2.fillPoly(frame, [pts], tuple(float(c) for c in color), cv2.LINE_AA, shift=4)


def _draw_barrier(frame: np.ndarray, scene: Scene) -> None:
    """Concrete median barrier, 0.8 m high, along the left road edge: long edges that converge like lanes."""
    x = scene.road[0] - 0.3
    zs = np.geomspace(2.5, 400, 40)
    base = [_project(scene, x, 0.0, z) for z in zs]
    top = [_project(scene, x, 0.8, z) for z in zs]
    _fill(frame, base + top[::-1], np.asarray((150, 152, 150)) * (0.6 + 0.5 * scene.asphalt))
    foot = [_project(scene, x, 0.12, z) for z in zs]
    _fill(frame, base + foot[::-1], (95, 95, 95))


def _draw_guardrail(frame: np.ndarray, scene: Scene) -> None:
    """Metal guardrail along the right road edge: posts every 4 m and a bright W-beam."""
    x = scene.road[1] + 0.6
    for z in np.arange(3.0 + (scene.vp_x % 4), 150, 4.0)[::-1]:
        x0, y0 = _project(scene, x, 0.0, z)
        _, y1 = _project(scene, x, 0.7, z)
        half = max(0.08 * F_PX / z, 0.5)
        _fill(frame, [(x0 - half, y0), (x0 + half, y0), (x0 + half, y1), (x0 - half, y1)], (60, 60, 62))
    zs = np.geomspace(2.5, 400, 40)
    low = [_project(scene, x, 0.5, z) for z in zs]
    high = [_project(scene, x, 0.8, z) for z in zs]
    _fill(frame, low + high[::-1], (185, 188, 190))


def _draw_vehicle(frame: np.ndarray, scene: Scene, v: Vehicle) -> None:
    """A vehicle as a shaded 3D box (side, roof, rear) with windows, lights, bumper and wheels."""
    color = np.asarray(v.color) * 255
    xl, xr, z0, z1 = v.x - v.width / 2, v.x + v.width / 2, v.z, v.z + v.length
    bottom = 1.0 if v.truck else 0.25  # trucks: a trailer box over a dark chassis

    def face(xa, xb, ha, hb, za, zb):
        return [
            _project(scene, xa, ha, za),
            _project(scene, xb, ha, zb),
            _project(scene, xb, hb, zb),
            _project(scene, xa, hb, za),
        ]

    _fill(frame, face(xl + 0.2, xr - 0.2, 0.0, bottom + 0.1, z0 + 0.4, z0 + 0.4), (20, 20, 22))  # chassis
    for xa in (xl + 0.05, xr - 0.35):  # rear wheels
        _fill(frame, face(xa, xa + 0.3, 0.0, 0.7, z0 + 0.5, z0 + 0.5), (12, 12, 12))
    if xl > 0:  # left side faces the camera
        _fill(frame, face(xl, xl, bottom, v.height, z0, z1), color * 0.62)
    if xr < 0:
        _fill(frame, face(xr, xr, bottom, v.height, z0, z1), color * 0.62)
    if v.height < scene.cam_h:  # the roof is seen from above
        _fill(
            frame,
            [
                _project(scene, xl, v.height, z0),
                _project(scene, xr, v.height, z0),
                _project(scene, xr, v.height, z1),
                _project(scene, xl, v.height, z1),
            ],
            color * 1.05,
        )
    _fill(frame, face(xl, xr, bottom, v.height, z0, z0), color * 0.85)  # rear
    if v.truck:  # the doors' seam and the under-ride bar
        _fill(frame, face(v.x - 0.02, v.x + 0.02, bottom + 0.1, v.height - 0.1, z0, z0), color * 0.5)
        _fill(frame, face(xl + 0.1, xr - 0.1, 0.45, 0.6, z0 - 0.05, z0 - 0.05), (25, 25, 25))
        return
    h = v.height
    _fill(frame, face(xl + 0.15, xr - 0.15, 0.6 * h, 0.93 * h, z0, z0), (40, 38, 35))  # rear window
    _fill(frame, face(xl, xr, bottom, 0.3 * h, z0 - 0.02, z0 - 0.02), color * 0.45)  # bumper
    for xa in (xl + 0.05, xr - 0.4):
        _fill(frame, face(xa, xa + 0.35, 0.45 * h, 0.57 * h, z0 - 0.02, z0 - 0.02), (30, 30, 190))  # lights
    _fill(frame, face(v.x - 0.26, v.x + 0.26, 0.33 * h, 0.45 * h, z0 - 0.03, z0 - 0.03), (215, 215, 210))


def _camera(frame: np.ndarray, scene: Scene, rng: np.random.Generator, bank: TextureBank) -> np.ndarray:
    """What the sensor adds: haze with distance, exposure, white balance, vignette, glare, gamma, blur, noise."""
    img = frame.astype(np.float32)
    # Haze: blend towards a bright sky colour near the horizon (rows far from it are left alone: fast).
    reach = rng.uniform(40, 120)
    dist = np.abs(np.arange(H, dtype=np.float32) - scene.horizon)
    rows = np.flatnonzero(dist < reach * 5)
    haze = (scene.haze * 0.85 * np.exp(-dist[rows] / reach))[:, None]
    haze_color = np.clip(np.asarray(scene.sky, np.float32) + 0.2, 0, 1) * 255
    flat = img.reshape(H, W * 3)  # (H, W*3) views: numpy broadcasts fast along a long last axis
    flat[rows] = flat[rows] * (1 - haze) + haze * np.tile(haze_color, W)
    # Exposure, white balance and vignette in one multiply.
    img *= _colorize(scene.gain * (1 - rng.uniform(0.08, 0.25) * bank.radius2), scene.cast)
    if rng.random() < 0.25:  # sun glare: a bright bloom somewhere high in the frame
        gx, gy, r = rng.uniform(0, W), rng.uniform(0, scene.horizon + 60), rng.uniform(150, 400)
        x0, x1, y0, y1 = (
            int(np.clip(v, 0, m)) for v, m in ((gx - 2 * r, W), (gx + 2 * r, W), (gy - 2 * r, H), (gy + 2 * r, H))
        )
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] += (rng.uniform(80, 200) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / r**2))[..., None]
    lut = np.clip(255 * (np.arange(256) / 255) ** scene.gamma, 0, 255).astype(np.uint8)
    out = cv2.LUT(np.clip(img, 0, 255).astype(np.uint8), lut)
    if scene.blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), scene.blur)
    noisy = cv2.scaleAdd(bank.crop(bank.sensor, rng), scene.noise, out.astype(np.float32))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _sequence_look(rng: np.random.Generator) -> dict:
    """What one sequence (a drive) shares: time of day, weather, region, traffic."""
    overcast = rng.random() < 0.4
    return {
        "sky": (0.8, 0.8, 0.78) if overcast else (0.88, 0.68, 0.5),  # BGR
        "terrain": tuple(rng.choice([(0.25, 0.42, 0.35), (0.35, 0.45, 0.5), (0.3, 0.35, 0.3)])),
        "asphalt": rng.uniform(0.3, 0.5),
        "haze": rng.uniform(0.1, 0.6),
        "gain": rng.uniform(0.8, 1.1),
        "yellow": rng.uniform(0.2, 0.6),
        "traffic": rng.uniform(1.5, 3.5),
        "shadows": rng.uniform(0.3, 1.5),
    }


def make_frame(seed: int, sequence: str, index: int, bank: TextureBank | None = None):
    """One frame and its lanes, a pure function of (seed, sequence, index): (BGR uint8, lanes, JPEG quality)."""
    code = int("".join(c for c in sequence if c.isdigit()))
    look = _sequence_look(np.random.default_rng([seed, code]))
    rng = np.random.default_rng([seed, code, index])
    scene = sample_scene(rng, look)
    frame = render_scene(scene, rng, bank or TextureBank(seed))
    return frame, scene_labels(scene), scene.jpeg


# -- the dataset on disk ----------------------------------------------------------------------------


def _frames_of_split(n_train: int, n_val: int, n_test: int) -> list[tuple[str, str, int]]:
    """(label file, sequence, index) of every frame, as TuSimple spreads them over its sequences."""
    n_0531 = n_train // 8  # TuSimple: 0531 holds about a tenth of the training frames, the rest is 0313
    n_0313_2 = (n_train - n_0531) // 2
    counts = [
        ("label_data_0313.json", "0313-1", n_train - n_0531 - n_0313_2),
        ("label_data_0313.json", "0313-2", n_0313_2),
        ("label_data_0531.json", "0531", n_0531),
        (f"label_data_{VALIDATION_SEQUENCE}.json", VALIDATION_SEQUENCE, n_val),
        ("test_label.json", TEST_SEQUENCE, n_test),
    ]
    return [(name, seq, i) for name, seq, n in counts for i in range(n)]


def clip_id(sequence: str, index: int) -> str:
    """A clip folder name like TuSimple's: small numbers in 0313, 19-digit timestamps elsewhere."""
    if sequence.startswith("0313"):
        return str(60 * (index + 1) + (20 if sequence.endswith("2") else 0))
    base = {"0531": 1492626047222176976, "0530": 1492626760788443246}.get(sequence, 1494452381594376146)
    return str(base + 2_000_000_000 * index)  # clips of a drive are a couple of seconds apart


def _write_frames(folder: Path, n_train: int, n_val: int, n_test: int, seed: int, progress: bool) -> None:
    """Generate every frame into `folder` and write the label files (one JSON line per frame)."""
    from tqdm import tqdm

    bank = TextureBank(seed)
    lines: dict[str, list[str]] = {}
    frames = _frames_of_split(n_train, n_val, n_test)
    for name, sequence, index in tqdm(frames, desc="synth", unit="frame", disable=not progress, file=sys.stderr):
        frame, lanes, quality = make_frame(seed, sequence, index, bank)
        raw_file = f"clips/{sequence}/{clip_id(sequence, index)}/20.jpg"
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, "cv2 failed to encode a frame"
        (folder / raw_file).parent.mkdir(parents=True, exist_ok=True)
        (folder / raw_file).write_bytes(jpeg.tobytes())
        # Key order and spacing as in TuSimple's own files.
        lines.setdefault(name, []).append(
            json.dumps({"lanes": lanes, "h_samples": list(H_SAMPLES), "raw_file": raw_file})
        )
    for name, rows in lines.items():
        (folder / name).write_text("".join(row + "\n" for row in rows))
    meta = {"generator": "elgan_ray.data.synthetic", "version": EMBEDDED_VERSION, "seed": seed}
    meta |= {"train": n_train, "val": n_val, "test": n_test}
    (folder / MARKER).write_text(json.dumps(meta, indent=1) + "\n")


def write_synthetic_dataset(
    out: str | Path, n_train: int, n_val: int, n_test: int, seed: int, progress: bool = True
) -> Path:
    """Write a synthetic TuSimple-layout dataset to `out`, all or nothing; the same seed gives the same bytes.

    A split with 0 frames gets no label file. `out` may be new, empty, or an earlier synthetic dataset.
    """
    out = Path(out)
    for name, n in (("--train", n_train), ("--val", n_val), ("--test", n_test)):
        if n < 0:
            raise UserError(name, f"frame count must be >= 0, got {n}")
    if n_train + n_val + n_test == 0:
        raise UserError("--train/--val/--test", "nothing to write: every frame count is 0")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise UserError(out, "exists and is not an empty folder or an earlier synthetic dataset: choose another")
    with atomic_directory(out) as staging:
        _write_frames(staging, n_train, n_val, n_test, seed, progress)
    return out


def embedded_dataset(cache_dir: str | Path | None = None) -> Path:
    """The project's default dataset (seed 0, EMBEDDED_SIZES), generated on first use and cached.

    Lives in `cache_dir`, else $ELGAN_RAY_CACHE, else ~/.cache/elgan_ray, as synthetic-<version>. Safe when
    several processes (Ray trials) ask at once: a lock lets one of them generate while the others wait, and
    the folder appears by one atomic rename, so whoever finds it finds it complete.
    """
    root = Path(cache_dir or os.environ.get("ELGAN_RAY_CACHE") or Path.home() / ".cache" / "elgan_ray")
    final = root / f"synthetic-{EMBEDDED_VERSION}"
    if (final / MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".synthetic-{EMBEDDED_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait here while one generates
        if (final / MARKER).is_file():
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=root))
        try:
            _write_frames(staging, *EMBEDDED_SIZES, seed=0, progress=sys.stderr.isatty())
            os.rename(staging, final)  # fails if a process without the lock (other host) won the race
        except OSError:
            if not (final / MARKER).is_file():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final
