"""Seeded scene descriptions for the built-in procedural world: background, floor, objects, motion.

A :class:`Scene` is a frozen, fully explicit description of one video: everything the renderer
needs (trajectories included) is precomputed here from ``numpy.random.default_rng(seed)``, so the
same seed gives the same scene, and edits (remove / replace / insert / new background) are new
scene *descriptions* rendered by the same code, never pixel edits of an output.

Coordinates: pixels, ``x`` to the right, ``y`` down. The wall fills the frame above ``horizon``;
the floor fills the rest. Objects rest on the *floor line* ``ground`` (their cast shadows lie on it
and their reflections are mirrored about it). With a camera pan the background is ``world_width``
wide and the viewport's left edge is at ``pan[t]``; objects live in screen coordinates.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass, field, replace
import numpy as np

from genprop.datasets.procedural.motion import MOTIONS, simulate_path
from genprop.video import fps_string

RGB = tuple[int, int, int]

SHAPES = ("circle", "ellipse", "square", "rectangle", "triangle", "star", "diamond", "hexagon")
TEXTURES = ("solid", "stripes", "dots", "gradient")
WALL_KINDS = ("gradient", "stripes", "checker", "noise")
FLOOR_KINDS = ("tiles", "planks", "noise", "plain")

# Named object colours (so prompts such as "remove the red star" are true).
OBJECT_COLORS: dict[str, RGB] = {
    "red": (215, 40, 40), "orange": (245, 135, 25), "yellow": (240, 210, 35),
    "green": (45, 170, 65), "teal": (25, 165, 165), "blue": (40, 85, 220),
    "purple": (135, 55, 200), "pink": (240, 105, 180), "white": (245, 245, 240),
    "black": (25, 25, 30),
}

# Solid colours used to paint a tracked object (the "track colored regions" task).
FILL_COLORS: tuple[RGB, ...] = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255))


@dataclass(frozen=True)
class Background:
    """Textures of the wall (above the horizon) and the floor (below it).

    Attributes:
        wall_kind (str): one of :data:`WALL_KINDS`.
        wall_colors (tuple[RGB, RGB]): the wall texture's two colours.
        wall_scale (float): period of stripes / size of checker cells / noise cell, in pixels.
        wall_angle (float): orientation of stripes and gradients, radians.
        floor_kind (str): one of :data:`FLOOR_KINDS`.
        floor_colors (tuple[RGB, RGB]): the floor texture's two colours.
        floor_scale (float): tile / plank size, pixels.
        noise_seed (int): seed of the value-noise textures.
    """

    wall_kind: str
    wall_colors: tuple[RGB, RGB]
    wall_scale: float
    wall_angle: float
    floor_kind: str
    floor_colors: tuple[RGB, RGB]
    floor_scale: float
    noise_seed: int

    def describe(self) -> str:
        """A short phrase such as ``"blue and grey stripes"`` (for prompts)."""
        a, b = (color_name(c) for c in self.wall_colors)
        colours = a if a == b else f"{a} and {b}"
        noun = {"gradient": "gradient", "stripes": "stripes", "checker": "checkerboard",
                "noise": "mottled texture"}[self.wall_kind]
        return f"{colours} {noun}"


@dataclass(frozen=True)
class ObjectSpec:
    """One object: appearance plus its whole trajectory.

    Attributes:
        id (int): instance id (1..255) in the id maps.
        shape (str): one of :data:`SHAPES`.
        color (RGB): main colour; ``color_name`` names it.
        texture (str): one of :data:`TEXTURES`; ``texture_color`` is its second colour.
        texture_scale (float): stripe period / dot spacing in object units (radius = 1).
        size (float): bounding radius in pixels.
        aspect (float): height/width ratio for ellipse and rectangle.
        depth (float): larger is nearer the camera (drawn later).
        motion (str): one of :data:`MOTIONS` (for descriptions; ``path`` is what is rendered).
        path (tuple[tuple[float, float], ...]): centre ``(x, y)`` per frame, screen pixels.
        angles (tuple[float, ...]): rotation per frame, radians.
    """

    id: int
    shape: str
    color: RGB
    color_name: str
    texture: str
    texture_color: RGB
    texture_scale: float
    size: float
    aspect: float
    depth: float
    motion: str
    path: tuple[tuple[float, float], ...]
    angles: tuple[float, ...]

    @property
    def name(self) -> str:
        """E.g. ``"red star"``."""
        return f"{self.color_name} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """A full video description. See the module docstring for coordinates.

    Attributes:
        seed (int): the seed the scene was made from.
        frames, height, width (int): video size.
        fps (str): frame rate as a rational string, e.g. ``"12"`` or ``"30000/1001"``.
        horizon (float): y of the wall/floor boundary.
        ground (float): y of the floor line (objects rest on it; mirror axis of reflections).
        world_width (int): width of the background (``width`` plus the pan range).
        pan (tuple[int, ...]): viewport left edge in background pixels, per frame.
        puddle (tuple[float, float]): background x-range of the reflective floor region.
        reflectivity (float): reflection opacity at the floor line.
        sun (float): shadow x-shift per pixel of height above the floor line.
        shadow_strength (float): darkening of a shadow under an object touching the floor.
        background (Background): wall and floor textures.
        objects (tuple[ObjectSpec, ...]): the objects, ids ascending.
    """

    seed: int
    frames: int
    height: int
    width: int
    fps: str
    horizon: float
    ground: float
    world_width: int
    pan: tuple[int, ...]
    puddle: tuple[float, float]
    reflectivity: float
    sun: float
    shadow_strength: float
    background: Background
    objects: tuple[ObjectSpec, ...] = field(default=())

    def object(self, object_id: int) -> ObjectSpec:
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"scene {self.seed} has no object {object_id}")


def color_name(rgb: RGB) -> str:
    """The nearest everyday name of a colour (hue bins, with grey/white/black)."""
    r, g, b = (c / 255.0 for c in rgb)
    h, l, s = colorsys.rgb_to_hls(r, g, b)
    if l > 0.88:
        return "white"
    if l < 0.14:
        return "black"
    if s < 0.18:
        return "grey"
    deg = h * 360.0
    if l < 0.4 and 15 <= deg < 50:
        return "brown"
    for limit, name in ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"),
                        (195, "teal"), (255, "blue"), (290, "purple"), (340, "pink"), (361, "red")):
        if deg < limit:
            return name
    return "red"


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))


def _jitter(rgb: RGB, rng: np.random.Generator, amount: int = 14) -> RGB:
    d = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(np.clip(c + int(x), 0, 255)) for c, x in zip(rgb, d))  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Shapes (in object units: bounding radius 1, y down)
# ---------------------------------------------------------------------------------------------

def shape_mask(shape: str, u: np.ndarray, v: np.ndarray, aspect: float = 0.6) -> np.ndarray:
    """Inside test of ``shape`` at object-local coordinates ``(u, v)`` (radius-1 units)."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "ellipse":
        return u * u + (v / aspect) ** 2 <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.75
    if shape == "rectangle":
        return (np.abs(u) <= 0.92) & (np.abs(v) <= 0.92 * aspect)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "triangle":  # apex up, centroid at the origin, circumradius 1
        s3 = np.sqrt(3.0)
        return (v <= 0.5) & (v >= s3 * u - 1.0) & (v >= -s3 * u - 1.0)
    if shape == "hexagon":
        au, av = np.abs(u), np.abs(v)
        return (av <= 0.866) & (0.866 * au + 0.5 * av <= 0.866)
    if shape == "star":  # five points, one tip up
        r = np.hypot(u, v)
        theta = np.arctan2(u, -v)  # 0 at the top tip
        sector = 2 * np.pi / 5
        phi = np.abs(((theta + sector / 2) % sector) - sector / 2)  # 0 at a tip, pi/5 at a valley
        outer, inner = 1.0, 0.45
        # boundary: the straight edge from the tip (outer, 0) to the valley (inner, pi/5)
        px, py = inner * np.cos(np.pi / 5), inner * np.sin(np.pi / 5)
        x, y = r * np.cos(phi), r * np.sin(phi)
        # inside when on the origin's side of that edge
        return (px - outer) * y - py * (x - outer) >= 0.0
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


@functools.lru_cache(maxsize=64)
def shape_extent_down(shape: str, aspect: float) -> float:
    """How far below its centre an unrotated shape reaches, in radius units."""
    g = np.linspace(-1.0, 1.0, 401)
    u, v = np.meshgrid(g, g)
    inside = shape_mask(shape, u, v, aspect)
    return float(v[inside].max()) if inside.any() else 1.0


# ---------------------------------------------------------------------------------------------
# Random scene pieces
# ---------------------------------------------------------------------------------------------

def random_background(rng: np.random.Generator, *, exclude_kind: str | None = None) -> Background:
    """A random wall + floor texture (muted colours so objects stand out)."""
    kinds = [k for k in WALL_KINDS if k != exclude_kind]
    wall_kind = kinds[int(rng.integers(len(kinds)))]
    h = float(rng.random())
    s = float(rng.uniform(0.15, 0.45))
    c0 = _hsv(h, s, float(rng.uniform(0.55, 0.9)))
    c1 = _hsv(h + float(rng.uniform(0.08, 0.5)), float(rng.uniform(0.1, 0.45)), float(rng.uniform(0.4, 0.8)))
    fh = float(rng.random())
    f0 = _hsv(fh, float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.45, 0.75)))
    f1 = _mix(f0, (255, 255, 255) if rng.random() < 0.5 else (0, 0, 0), float(rng.uniform(0.2, 0.35)))
    return Background(
        wall_kind=wall_kind, wall_colors=(c0, c1), wall_scale=float(rng.uniform(8.0, 22.0)),
        wall_angle=float(rng.uniform(0, np.pi)), floor_kind=FLOOR_KINDS[int(rng.integers(len(FLOOR_KINDS)))],
        floor_colors=(f0, f1), floor_scale=float(rng.uniform(0.8, 1.6)),
        noise_seed=int(rng.integers(0, 2**31 - 1)))


def random_appearance(rng: np.random.Generator, *, avoid: tuple[str, ...] = (),
                      avoid_colors: tuple[str, ...] = ()) -> dict:
    """Shape, colours and texture of a new object; avoids shapes/colour names already used."""
    shapes = [s for s in SHAPES if s not in avoid] or list(SHAPES)
    names = [c for c in OBJECT_COLORS if c not in avoid_colors] or list(OBJECT_COLORS)
    shape = shapes[int(rng.integers(len(shapes)))]
    cname = names[int(rng.integers(len(names)))]
    color = _jitter(OBJECT_COLORS[cname], rng)
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    toward = (255, 255, 255) if sum(color) < 380 else (0, 0, 0)
    tex_color = _mix(color, toward, float(rng.uniform(0.35, 0.55)))
    return dict(shape=shape, color=color, color_name=cname, texture=texture, texture_color=tex_color,
                texture_scale=float(rng.uniform(0.35, 0.6)), aspect=float(rng.uniform(0.5, 0.75)))


def random_object(rng: np.random.Generator, object_id: int, *, frames: int, width: int, height: int,
                  ground: float, depth: float, x0: float | None = None, avoid: tuple[str, ...] = (),
                  avoid_colors: tuple[str, ...] = ()) -> ObjectSpec:
    """A new object with a random appearance and motion."""
    look = random_appearance(rng, avoid=avoid, avoid_colors=avoid_colors)
    size = float(rng.uniform(0.1, 0.16)) * min(width, height)
    size = max(size, 2.5)
    motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
    ext = shape_extent_down(look["shape"], round(look["aspect"], 6))
    # A spinning object may reach one full radius down; keep it above the floor line.
    path, angles = simulate_path(rng, motion, frames=frames, width=width, height=height, size=size,
                                 extent_down=ext if motion == "gravity" else 1.0, ground=ground, x0=x0)
    return ObjectSpec(id=object_id, depth=depth, motion=motion, size=round(size, 4), path=path,
                      angles=angles, **look)


def reshape_object(old: ObjectSpec, rng: np.random.Generator, *, avoid: tuple[str, ...] = (),
                   avoid_colors: tuple[str, ...] = ()) -> ObjectSpec:
    """``old`` with a different shape and colour on the same trajectory (same id and depth).

    The size shrinks if needed so the new shape reaches no lower than the old one (no floor
    penetration on a trajectory computed for the old shape).
    """
    look = random_appearance(rng, avoid=avoid + (old.shape,), avoid_colors=avoid_colors + (old.color_name,))
    size = old.size
    if old.motion == "gravity":
        old_ext = shape_extent_down(old.shape, round(old.aspect, 6))
        new_ext = shape_extent_down(look["shape"], round(look["aspect"], 6))
        if new_ext > old_ext:
            size = round(old.size * old_ext / new_ext, 4)
    return replace(old, size=size, **look)


def make_scene_from(seed: int, *, frames: int, height: int, width: int, fps, pan: bool = True,
                    n_objects: tuple[int, int] = (2, 4)) -> Scene:
    """Build a scene from ``seed`` (see :func:`genprop.datasets.procedural.make_scene`)."""
    if frames < 1 or height < 8 or width < 8:
        raise ValueError(f"scene too small: {frames} frames of {height}x{width}")
    rng = np.random.default_rng(seed)
    horizon = float(rng.uniform(0.48, 0.58)) * height
    ground = horizon + float(rng.uniform(0.32, 0.5)) * (height - horizon)
    pan_px = int(round(float(rng.uniform(0.12, 0.3)) * width)) if pan and frames > 1 else 0
    direction = 1 if rng.random() < 0.5 else -1
    offsets = [int(round(pan_px * t / max(frames - 1, 1))) for t in range(frames)]
    if direction < 0:
        offsets = [pan_px - o for o in offsets]
    world_width = width + pan_px
    pw = float(rng.uniform(0.45, 0.75)) * width
    px0 = float(rng.uniform(0, world_width - pw))
    background = random_background(rng)
    n = int(rng.integers(n_objects[0], n_objects[1] + 1))
    depths = rng.permutation(n)
    slots = np.linspace(0, width, n + 1)
    objects: list[ObjectSpec] = []
    for i in range(n):
        x0 = float(rng.uniform(slots[i], slots[i + 1]))
        objects.append(random_object(
            rng, i + 1, frames=frames, width=width, height=height, ground=ground,
            depth=float(depths[i]), x0=x0, avoid=tuple(o.shape for o in objects),
            avoid_colors=tuple(o.color_name for o in objects)))
    return Scene(
        seed=int(seed), frames=int(frames), height=int(height), width=int(width), fps=fps_string(fps),
        horizon=round(horizon, 4), ground=round(ground, 4), world_width=int(world_width),
        pan=tuple(offsets), puddle=(round(px0, 4), round(px0 + pw, 4)),
        reflectivity=float(rng.uniform(0.4, 0.6)), sun=float(rng.uniform(-0.3, 0.3)),
        shadow_strength=float(rng.uniform(0.45, 0.65)), background=background, objects=tuple(objects))
