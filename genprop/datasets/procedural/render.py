"""Rasterise a :class:`Scene` to RGB frames, visible-instance id maps and per-object effect masks.

Render order per frame: background (wall, floor, reflective puddle) -> cast shadows (multiply) ->
reflections in the puddle (alpha blend, far to near) -> objects (far to near). Shadows and
reflections land only where no object is drawn, so an object's *effect mask* is the set of visible
background pixels its shadow or reflection changes.

Everything is vectorised numpy over small windows around each object; a pixel outside every window
of an object is untouched by it, bit for bit, which is what makes removal ground truth exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from genprop.datasets.procedural.scene import RGB, Background, ObjectSpec, Scene, shape_extent_down, shape_mask

# Alphas below this are dropped, so every pixel in an effect mask is visibly changed.
MIN_ALPHA = 0.04


@dataclass(frozen=True)
class RenderedVideo:
    """One rendered video.

    Attributes:
        frames (np.ndarray): ``(T, H, W, 3)`` uint8 RGB.
        ids (np.ndarray): ``(T, H, W)`` uint8 visible-instance ids (0 = background).
        effects (dict[int, np.ndarray]): object id -> ``(T, H, W)`` bool, the visible background
            pixels that object's shadow or reflection changes.
        object_ids (tuple[int, ...]): the ids of the objects drawn, ascending.
    """

    frames: np.ndarray
    ids: np.ndarray
    effects: dict[int, np.ndarray]
    object_ids: tuple[int, ...]

    def object_mask(self, object_id: int) -> np.ndarray:
        """``(T, H, W)`` bool: visible pixels of ``object_id``."""
        return self.ids == object_id

    def region(self, object_id: int) -> np.ndarray:
        """``(T, H, W)`` bool: ``object_id`` plus its effects."""
        return self.object_mask(object_id) | self.effects[object_id]


# ---------------------------------------------------------------------------------------------
# Background
# ---------------------------------------------------------------------------------------------

def _value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth value noise in [0, 1] of shape ``(h, w)``, bilinear over a random lattice."""
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    lattice = rng.random((gh, gw)).astype(np.float32)
    y = np.arange(h, dtype=np.float32) / cell
    x = np.arange(w, dtype=np.float32) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
    a = lattice[y0][:, x0]
    b = lattice[y0][:, x0 + 1]
    c = lattice[y0 + 1][:, x0]
    d = lattice[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _mix(c0: RGB, c1: RGB, t: np.ndarray) -> np.ndarray:
    a = np.asarray(c0, np.float32)
    b = np.asarray(c1, np.float32)
    return a + (b - a) * t[..., None].astype(np.float32)


def _wall(bg: Background, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ca, sa = np.cos(bg.wall_angle), np.sin(bg.wall_angle)
    proj = X * ca + Y * sa
    s = bg.wall_scale
    if bg.wall_kind == "gradient":
        t = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
    elif bg.wall_kind == "stripes":
        t = np.clip(0.5 + 2.5 * np.sin(2 * np.pi * proj / s), 0.0, 1.0)
    elif bg.wall_kind == "checker":
        t = ((np.floor(X / s) + np.floor(Y / s)) % 2).astype(np.float32)
    elif bg.wall_kind == "noise":
        h, w = X.shape
        t = 0.7 * _value_noise(rng, h, w, s * 1.5) + 0.3 * _value_noise(rng, h, w, s * 0.4)
        t = np.clip((t - 0.2) / 0.6, 0.0, 1.0)
    else:
        raise ValueError(f"unknown wall kind {bg.wall_kind!r}")
    return _mix(bg.wall_colors[0], bg.wall_colors[1], t)


def _floor(bg: Background, X: np.ndarray, Y: np.ndarray, horizon: float, height: int,
           rng: np.random.Generator) -> np.ndarray:
    d = np.maximum(Y - horizon, 0.0) + 1.5
    cx = X.shape[1] / 2.0
    fs = bg.floor_scale
    u = (X - cx) / d * (4.0 / fs)
    v = (4.0 * height / fs) / d
    if bg.floor_kind == "tiles":
        t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    elif bg.floor_kind == "planks":
        t = (np.floor(u * 1.5) % 2).astype(np.float32) * 0.6
        t = np.where(np.abs(u * 1.5 - np.round(u * 1.5)) < 0.04, 1.0, t)
    elif bg.floor_kind == "noise":
        h, w = X.shape
        t = _value_noise(rng, h, w, 6.0 * fs)
    elif bg.floor_kind == "plain":
        t = np.clip(1.0 - (Y - horizon) / max(height - horizon, 1.0), 0.0, 1.0)
    else:
        raise ValueError(f"unknown floor kind {bg.floor_kind!r}")
    # Far floor fades to its mean colour (avoids moire at the horizon) and darkens slightly.
    far = np.exp(-(d - 1.5) / (0.06 * height))
    t = t * (1 - far) + 0.5 * far
    rgb = _mix(bg.floor_colors[0], bg.floor_colors[1], t)
    return rgb * (0.82 + 0.18 * np.clip((d - 1.5) / (0.3 * height), 0.0, 1.0))[..., None]


def background_image(scene: Scene, background: Background | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The whole (pan-wide) background and the reflective region.

    Returns:
        ``(image, reflective)``: ``(H, world_width, 3)`` float32 and ``(H, world_width)`` bool
        (puddle columns, rows strictly below the floor line).
    """
    bg = background or scene.background
    H, Ww = scene.height, scene.world_width
    rng = np.random.default_rng(bg.noise_seed)
    Y, X = np.mgrid[0:H, 0:Ww].astype(np.float32)
    wall = _wall(bg, X, Y, rng)
    floor = _floor(bg, X, Y, scene.horizon, H, rng)
    is_floor = (Y >= scene.horizon)[..., None]
    img = np.where(is_floor, floor, wall).astype(np.float32)
    # The puddle mirrors the background about the floor line, darkened and tinted.
    px0, px1 = scene.puddle
    reflective = (X >= px0) & (X < px1) & (Y > scene.ground)
    src = np.clip(np.rint(2 * scene.ground - np.arange(H)), 0, H - 1).astype(int)
    mirrored = img[src]
    tint = np.asarray((70, 95, 130), np.float32)
    puddle = 0.35 * img + 0.45 * mirrored + 0.2 * tint
    img = np.where(reflective[..., None], puddle, img).astype(np.float32)
    return img, reflective


# ---------------------------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------------------------

def _window(cx: float, cy: float, r: float, H: int, W: int) -> tuple[slice, slice] | None:
    y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, H)
    x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, W)
    if y0 >= y1 or x0 >= x1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _texture(o: ObjectSpec, u: np.ndarray, v: np.ndarray, fill: RGB | None) -> np.ndarray:
    if fill is not None:
        return np.broadcast_to(np.asarray(fill, np.float32), u.shape + (3,))
    if o.texture == "solid":
        return np.broadcast_to(np.asarray(o.color, np.float32), u.shape + (3,))
    s = o.texture_scale
    if o.texture == "stripes":
        t = (np.floor((u + 0.35 * v) / s) % 2).astype(np.float32)
    elif o.texture == "dots":
        gu, gv = u / s - np.round(u / s), v / s - np.round(v / s)
        t = (gu * gu + gv * gv < 0.09).astype(np.float32)
    elif o.texture == "gradient":
        t = np.clip((v + 1.0) / 2.0, 0.0, 1.0)
    else:
        raise ValueError(f"unknown texture {o.texture!r}")
    return _mix(o.color, o.texture_color, t)


def _object_layer(o: ObjectSpec, t: int, grid: tuple[np.ndarray, np.ndarray], H: int, W: int,
                  mirror_axis: float | None, fill: RGB | None):
    """``(window, mask, colour)`` of object ``o`` at frame ``t`` (mirrored about ``mirror_axis``)."""
    cx, cy = o.path[t]
    r = o.size * 1.2 + 1.0
    ccy = cy if mirror_axis is None else 2 * mirror_axis - cy
    win = _window(cx, ccy, r, H, W)
    if win is None:
        return None
    Y, X = grid[0][win], grid[1][win]
    if mirror_axis is not None:
        Y = 2 * mirror_axis - Y
    dx, dy = X - cx, Y - cy
    ca, sa = np.cos(o.angles[t]), np.sin(o.angles[t])
    u = (ca * dx + sa * dy) / o.size
    v = (-sa * dx + ca * dy) / o.size
    m = shape_mask(o.shape, u, v, o.aspect)
    if not m.any():
        return None
    return win, m, _texture(o, u, v, fill)


def _shadow(o: ObjectSpec, t: int, scene: Scene, grid) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """``(window, alpha)`` of ``o``'s cast shadow at frame ``t`` (a soft flattened ellipse)."""
    H, W = scene.height, scene.width
    cx, cy = o.path[t]
    bottom = cy + o.size * shape_extent_down(o.shape, round(o.aspect, 6))
    h = max(scene.ground - bottom, 0.0)
    sx = cx + scene.sun * h
    a = o.size * 0.95 * (1.0 + 0.5 * h / H)
    b = max(o.size * 0.22 * (1.0 + 0.3 * h / H), 1.0)
    strength = scene.shadow_strength * (1.0 - min(0.7, h / max(0.8 * scene.ground, 1.0)))
    win = _window(sx, scene.ground, max(a, b) + 1.0, H, W)
    if win is None:
        return None
    Y, X = grid[0][win], grid[1][win]
    q = ((X - sx) / a) ** 2 + ((Y - scene.ground) / b) ** 2
    alpha = strength * np.clip((1.0 - q) / 0.4, 0.0, 1.0)
    alpha = np.where((alpha >= MIN_ALPHA) & (Y >= scene.horizon), alpha, 0.0).astype(np.float32)
    if not alpha.any():
        return None
    return win, alpha


def render(scene: Scene, *, without: Sequence[int] = (), replace: Mapping[int, ObjectSpec] | None = None,
           extra: Sequence[ObjectSpec] = (), background: Background | None = None,
           fill: Mapping[int, RGB] | None = None) -> RenderedVideo:
    """Render ``scene``, optionally edited.

    Args:
        scene (Scene): the scene.
        without (Sequence[int]): ids of objects to leave out (with their shadows and reflections).
        replace (Mapping[int, ObjectSpec] | None): id -> object drawn instead of that scene object.
        extra (Sequence[ObjectSpec]): objects added to the scene (ids must be new).
        background (Background | None): a different wall/floor texture.
        fill (Mapping[int, RGB] | None): id -> solid colour the object is painted with (its
            reflection follows; its shadow is unchanged).
    """
    replace = dict(replace or {})
    fill = dict(fill or {})
    objs = [replace.get(o.id, o) for o in scene.objects if o.id not in set(without)] + list(extra)
    ids = [o.id for o in objs]
    if len(set(ids)) != len(ids) or any(not 1 <= i <= 255 for i in ids):
        raise ValueError(f"object ids must be unique and in 1..255, got {ids}")
    for o in objs:
        if len(o.path) < scene.frames or len(o.angles) < scene.frames:
            raise ValueError(f"object {o.id} has a path of {len(o.path)} frames, scene has {scene.frames}")
    order = sorted(objs, key=lambda o: (o.depth, o.id))
    T, H, W = scene.frames, scene.height, scene.width
    bg_wide, refl_wide = background_image(scene, background)
    grid = tuple(np.mgrid[0:H, 0:W].astype(np.float32))
    rows = np.arange(H, dtype=np.float32)
    fade_len = max((H - scene.ground) * 1.3, 1.0)
    refl_rows = scene.reflectivity * np.clip(1.0 - (rows - scene.ground) / fade_len, 0.0, 1.0)
    refl_rows = np.where(refl_rows >= MIN_ALPHA, refl_rows, 0.0).astype(np.float32)

    frames = np.empty((T, H, W, 3), np.uint8)
    id_maps = np.zeros((T, H, W), np.uint8)
    effects = {o.id: np.zeros((T, H, W), bool) for o in objs}
    for t in range(T):
        off = scene.pan[t]
        img = bg_wide[:, off:off + W].copy()
        region = refl_wide[:, off:off + W]
        shade = np.ones((H, W), np.float32)
        for o in objs:
            sh = _shadow(o, t, scene, grid)
            if sh is not None:
                win, alpha = sh
                shade[win] *= 1.0 - alpha
                effects[o.id][t][win] |= alpha > 0
        img *= shade[..., None]
        for o in order:
            layer = _object_layer(o, t, grid, H, W, scene.ground, fill.get(o.id))
            if layer is None:
                continue
            win, m, col = layer
            a = np.where(m & region[win], refl_rows[win[0]][:, None], 0.0).astype(np.float32)
            if a.any():
                img[win] = img[win] * (1.0 - a[..., None]) + col * a[..., None]
                effects[o.id][t][win] |= a > 0
        idm = id_maps[t]
        for o in order:
            layer = _object_layer(o, t, grid, H, W, None, fill.get(o.id))
            if layer is None:
                continue
            win, m, col = layer
            img[win][m] = col[m]
            idm[win][m] = o.id
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        for k in effects:
            effects[k][t] &= idm == 0
    return RenderedVideo(frames=frames, ids=id_maps, effects=effects, object_ids=tuple(sorted(ids)))
