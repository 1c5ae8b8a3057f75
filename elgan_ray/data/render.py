"""The pixels of a synthetic scene (scene.py): road, paint, distractors, vehicles, shadows and the camera.

The scenes are made hard in the ways the real data is: solid, dashed and dotted markings in white and
yellow, vehicles hiding markings, shadows, worn paint, haze, lighting, blur, sensor noise and JPEG
artefacts, plus lane-like distractors (tyre tracks, seams, barriers).
"""

from __future__ import annotations

import cv2
import numpy as np

from elgan_ray.data.scene import F_PX, H, Scene, Vehicle, W, ground_box, lane_x

PAINT = {"white": (0.93, 0.93, 0.92), "yellow": (0.15, 0.72, 0.92)}  # BGR reflectance of fresh paint


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
        (ground_box(v.x - v.width / 2 - 0.1, v.x + v.width / 2 + 0.3, v.z - 0.3, v.z + v.length), 0.65)
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
