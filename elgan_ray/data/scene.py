"""Synthetic highway scenes as parameters (no pixels) and their TuSimple lane labels.

Geometry: a flat road seen by a camera `cam_h` metres up with focal length F_PX. A ground point (X, Z)
projects to y = horizon + F_PX * cam_h / Z, x = vp_x + F_PX * X / Z + curve * Z / (F_PX * cam_h); the last
term bends every lane alike (constant road curvature). Per image row, with dy = y - horizon, a lane at X
lies at x = vp_x + X * dy / cam_h + curve / dy: the classic hyperbola lane model.
Labels follow the real annotation: the lane centre at each h_sample from where the lane becomes visible
down to the image bottom, through dash gaps and occlusions; -2 above that and outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elgan_ray.config import IMAGE_HEIGHT, IMAGE_WIDTH
from elgan_ray.data.labels import H_SAMPLES

F_PX = 1000.0  # focal length in pixels (about 65 degrees across 1280 px)
H, W = IMAGE_HEIGHT, IMAGE_WIDTH


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
        yield ground_box(road[0] - 5, road[1] + 5, z0, z0 + rng.uniform(8, 20)), rng.uniform(0.5, 0.7)


def ground_box(x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
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


def sequence_look(rng: np.random.Generator) -> dict:
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
