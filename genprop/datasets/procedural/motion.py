"""Object motion in the procedural world: centre positions and angles per frame for each motion model."""

from __future__ import annotations

import numpy as np

MOTIONS = ("bounce", "gravity", "drift")


def simulate_path(rng: np.random.Generator, motion: str, *, frames: int, width: int, height: int,
                  size: float, extent_down: float, ground: float, x0: float | None = None,
                  spin: bool = True) -> tuple[tuple[tuple[float, float], ...], tuple[float, ...]]:
    """Centre positions and angles per frame for one motion model.

    ``bounce``: constant velocity, reflected at the frame edges and the floor line;
    ``gravity``: falls and bounces on the floor line with restitution, reflects at the side walls;
    ``drift``: a straight line between two in-frame points plus a small vertical bob.
    """
    lo_x, hi_x = size, width - size
    lo_y, hi_y = size, ground - extent_down * size
    if hi_x <= lo_x:
        lo_x = hi_x = width / 2
    if hi_y <= lo_y:
        lo_y = hi_y = max(size, ground - extent_down * size)
    x = float(rng.uniform(lo_x, hi_x)) if x0 is None else float(np.clip(x0, lo_x, hi_x))
    speed = float(rng.uniform(0.012, 0.03)) * width
    angle0 = float(rng.uniform(-0.3, 0.3))
    omega = float(rng.uniform(-0.12, 0.12)) if (spin and motion != "gravity") else 0.0
    angles = tuple(angle0 + omega * t for t in range(frames)) if motion != "gravity" else (0.0,) * frames
    pts: list[tuple[float, float]] = []

    def reflect(p: float, vel: float, lo: float, hi: float, e: float = 1.0) -> tuple[float, float]:
        for _ in range(4):
            if p < lo:
                p, vel = lo + (lo - p) * e, -vel * e
            elif p > hi:
                p, vel = hi - (p - hi) * e, -vel * e
            else:
                break
        return float(np.clip(p, lo, hi)), vel

    if motion == "bounce":
        lo_y = min(max(lo_y, 0.3 * ground), hi_y)  # stay low enough to be reflected
        y = float(rng.uniform(lo_y + 0.3 * (hi_y - lo_y), hi_y))
        theta = float(rng.uniform(0, 2 * np.pi))
        vx, vy = speed * np.cos(theta), 0.7 * speed * np.sin(theta)
        for _ in range(frames):
            pts.append((x, y))
            x, vx = reflect(x + vx, vx, lo_x, hi_x)
            y, vy = reflect(y + vy, vy, lo_y, hi_y)
    elif motion == "gravity":
        y = float(rng.uniform(lo_y, lo_y + 0.6 * (hi_y - lo_y)))
        vx = speed * 0.6 * (1 if rng.random() < 0.5 else -1)
        vy = float(rng.uniform(-0.5, 0.5)) * speed
        g = 0.0055 * height
        e = float(rng.uniform(0.7, 0.92))
        for _ in range(frames):
            pts.append((x, y))
            vy += g
            x, vx = reflect(x + vx, vx, lo_x, hi_x)
            y, vy = reflect(y + vy, vy, lo_y, hi_y, e)
    elif motion == "drift":
        lo_y = min(max(lo_y, 0.3 * ground), hi_y)
        y = float(rng.uniform(lo_y + 0.3 * (hi_y - lo_y), hi_y))
        span = speed * max(frames - 1, 1)
        x1 = float(np.clip(x + span * (1 if rng.random() < 0.5 else -1), lo_x, hi_x))
        y1 = float(np.clip(y + float(rng.uniform(-0.3, 0.3)) * span, lo_y, hi_y))
        bob = float(rng.uniform(0.0, 0.04)) * height
        phase = float(rng.uniform(0, 2 * np.pi))
        for t in range(frames):
            a = t / max(frames - 1, 1)
            yy = y + (y1 - y) * a + bob * np.sin(phase + 0.6 * t)
            pts.append((x + (x1 - x) * a, float(np.clip(yy, lo_y, hi_y))))
    else:
        raise ValueError(f"unknown motion {motion!r}; known: {MOTIONS}")
    return tuple((round(px, 4), round(py, 4)) for px, py in pts), tuple(round(a, 5) for a in angles)
