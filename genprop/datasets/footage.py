"""Synthetic camera footage at native resolution, with a planted first-frame edit whose true region is known.

Tests and benchmarks of propagation at real sizes need footage that behaves like a camera clip (detail that a
model working at 40x24 visibly loses, camera motion, an independently moving object, sensor noise, an H.264
file with colour tags and audio), and no video can be downloaded on our machines; so it is rendered from a seed:

    foot = Footage(FootageConfig(frames=100, seed=3))
    for original, edited, region in foot.frames():     # lazily, a few ms per 1280x720 frame
        ...
    files = foot.write("/tmp/clip")                      # original.mp4 + the two first-frame PNGs

The scene is a static world texture (smooth multi-scale noise, sharp shapes, hatching and text) larger than
the frame; each frame is a sub-pixel crop of it along a smooth, bounded camera path. One textured, shaded
ellipse moves and turns on its own path, always fully inside the frame. The planted edit recolours that
ellipse (a solid colour, its shading kept); :meth:`Footage.true_region` is its mask, i.e. exactly the pixels
the edit changes. Everything is deterministic from the config (for a given numpy/OpenCV/FFmpeg build).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import cv2
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc, Colorspace, Interpolation, VideoReformatter

AUDIO_RATE = 48000
AUDIO_FRAME = 1024           # AAC samples per frame; the audio track ends within one of these of the video
NOISE_BANK = 4               # noise fields; each frame views one of them at a shifted offset (47 MB at 720p)
NOISE_PAD = 32               # offsets 0..NOISE_PAD per axis: NOISE_BANK * 33**2 = 4356 frames before a repeat
ENCODE_THREADS = 4           # fixed, not auto: x264's output depends on its thread count (and so on the machine)
# BITEXACT so the RGB->YUV conversion does not depend on which SIMD path swscale picks on this CPU.
_SWS_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)   # BT.709, the matrix the file is tagged with


@dataclass(frozen=True)
class FootageConfig:
    """What to render.

    Args:
        height, width (int): frame size; even (yuv420p) and at least 32.
        frames (int): clip length.
        fps (Fraction): exact frame rate.
        seed (int): everything (world, paths, object, noise, tones) follows from it.
        noise_sigma (float): standard deviation of the per-frame sensor noise, in 8-bit levels.
        audio (bool): mux a stereo 48 kHz AAC track of a few sine tones, as long as the video.
        crf (int): x264 CRF of the written ``original.mp4``.
    """
    height: int = 720
    width: int = 1280
    frames: int = 100
    fps: Fraction = Fraction(30000, 1001)
    seed: int = 0
    noise_sigma: float = 2.5
    audio: bool = True
    crf: int = 12


@dataclass(frozen=True)
class FootageFiles:
    """What :meth:`Footage.write` wrote.

    Args:
        video (str): ``original.mp4``: H.264 yuv420p, BT.709 tags (limited range), exact fps, AAC if audio.
        edited_first_frame (str): ``edited_first_frame.png`` (RGB): the decoded frame 0 of ``video`` with the
            edit applied to ``true_region(0)``; equal to ``identity_first_frame`` everywhere else.
        identity_first_frame (str): ``identity_first_frame.png`` (RGB): frame 0 of ``video`` as decoded.
        config (FootageConfig): what was rendered.
    """
    video: str
    edited_first_frame: str
    identity_first_frame: str
    config: FootageConfig


def _octaves(rng, shape, cells, scale) -> np.ndarray:
    """Sum of smooth noise at the given cell sizes (px at 720p), normalised to unit std per channel."""
    h, w = shape[:2]
    out = np.zeros(shape, np.float32)
    for cell, amp in cells:
        c = max(cell * scale, 1.0)
        grid = rng.standard_normal((int(h / c) + 2, int(w / c) + 2) + shape[2:]).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).reshape(shape)
    return (out - out.mean(axis=(0, 1))) / (out.std(axis=(0, 1)) + 1e-6)


def _world(rng, h: int, w: int, scale: float) -> np.ndarray:
    """The static scene, (h, w, 3) uint8: colour noise at every scale plus sharp shapes, hatching and text."""
    lum = _octaves(rng, (h, w), [(300, 1.0), (100, 0.7), (30, 0.5), (10, 0.35), (3, 0.25), (1, 0.2)], scale)
    chroma = _octaves(rng, (h, w, 3), [(400, 1.0), (120, 0.5)], scale)
    base = rng.uniform(90, 150, 3).astype(np.float32)
    img = np.ascontiguousarray(np.clip(base + 38 * lum[..., None] + 24 * chroma, 0, 255).astype(np.uint8))
    s = lambda lo, hi: max(1, int(round(rng.uniform(lo, hi) * scale)))  # a length in px at 720p, scaled
    d = lambda r: int(round(rng.uniform(-r, r) * scale))
    for _ in range(int(140 * h * w / (900 * 1600)) + 12):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 6)
        aa = cv2.LINE_AA if rng.random() < 0.5 else cv2.LINE_8   # some edges anti-aliased, some hard
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s(8, 140), y + s(8, 140)), colour, -1, aa)
        elif kind == 1:
            cv2.circle(img, (x, y), s(4, 60), colour, -1 if rng.random() < 0.7 else s(2, 6), aa)
        elif kind == 2:
            pts = (np.array([x, y]) + rng.normal(0, 45 * scale, (5, 2))).astype(np.int32)
            cv2.fillPoly(img, [pts], colour, aa)
        elif kind == 3:
            cv2.line(img, (x, y), (x + d(300), y + d(300)), colour, s(1, 4), aa)
        elif kind == 4:   # hatching: fine periodic detail that a low-resolution model cannot keep
            step, n, dx, dy = s(3, 9), int(rng.integers(6, 20)), s(20, 120), s(20, 120)
            for k in range(n):
                cv2.line(img, (x + k * step, y), (x + k * step + dx // 3, y + dy), colour, 1, cv2.LINE_8)
        else:
            text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(3, 9))))
            cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, max(0.3, rng.uniform(0.5, 1.6) * scale),
                        colour, max(1, int(round(2 * scale))), aa)
    grain = rng.normal(0, 5, (h, w, 1)).astype(np.float32)   # so the flat shapes are textured too
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """One RGB colour (float32, 0..255) from OpenCV-style HSV (h in 0..180, s and v in 0..1)."""
    px = np.array([[[h, s * 255, v * 255]]], np.uint8)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


class Footage:
    """Renders frame ``t`` of the original clip, its edited version and the edit's true region on demand.

    Args:
        config (FootageConfig): size, length, seed, noise and file options.

    Raises:
        ValueError: odd or too small frame size, or no frames.
    """

    def __init__(self, config: FootageConfig):
        h, w = config.height, config.width
        if h < 32 or w < 32 or h % 2 or w % 2 or config.frames < 1:
            raise ValueError(f"need even height, width >= 32 and frames >= 1, got {config}")
        self.config = config
        rng = np.random.default_rng(config.seed)
        scale = min(h, w) / 720
        # World 1.25x the frame each side; the camera stays within the margins for any number of frames.
        self._mx, self._my = int(0.125 * w) + 2, int(0.125 * h) + 2
        self._world = _world(rng, h + 2 * self._my, w + 2 * self._mx, scale)
        # Camera: a pan (x) of ~0.25 % of the width per frame at its fastest plus a slower vertical drift.
        ax, ay = 0.8 * self._mx, 0.5 * self._my
        # Horizontal phases start near a zero crossing, so every clip opens moving at >= 80 % of full speed.
        moving = lambda: rng.uniform(-0.6, 0.6) + math.pi * int(rng.integers(0, 2))
        self._cam = (ax, 0.0025 * w / ax, moving(),
                     ay, 0.0008 * w / ay, rng.uniform(0, 2 * math.pi))
        # Object: an ellipse of 7-10 % of the frame; its path keeps the semi-major axis inside at any rotation.
        aspect = rng.uniform(1.3, 1.7)
        b = math.sqrt(rng.uniform(0.07, 0.10) * h * w / (math.pi * aspect))
        shrink = min(1.0, 0.45 * min(h, w) / (b * aspect))   # only for extreme aspect ratios
        self._a, self._b = b * aspect * shrink, b * shrink
        px, py = w / 2 - self._a - 2, h / 2 - self._a - 2   # path amplitudes; <= 0.4 % of the width per frame
        self._path = (px, 0.004 * w / max(px, 1), moving(),
                      py, 0.002 * w / max(py, 1), rng.uniform(0, 2 * math.pi),
                      rng.uniform(0, math.pi), rng.choice([-1, 1]) * rng.uniform(0.004, 0.008))
        hue = rng.uniform(0, 180)
        self._sprite, self._luma_ref = self._make_sprite(rng, hue)
        paint = _hsv((hue + 90) % 180, 0.85, 0.9)   # the complementary hue: a large, unmistakable edit
        self._recolour_matrix = np.outer(paint / self._luma_ref, _LUMA).astype(np.float32)
        # Sensor noise: a bank of fields a little larger than the frame; frame t views one at an offset.
        self._noise = [(config.noise_sigma * rng.standard_normal((h + NOISE_PAD, w + NOISE_PAD, 3)))
                       .astype(np.float32) for _ in range(NOISE_BANK)]
        self._seed, self._cache = config.seed, None

    def _make_sprite(self, rng, hue: float) -> tuple[np.ndarray, float]:
        """The object's texture in its own frame, (S, S, 3) uint8, and its mean BT.709 luma inside the ellipse."""
        a, b = self._a, self._b
        size = 2 * int(math.ceil(a)) + 7
        c = (size - 1) / 2
        yy, xx = np.mgrid[:size, :size].astype(np.float32) - c
        shade = np.clip(1.05 - 0.45 * ((xx / a + 0.35) ** 2 + (yy / b + 0.35) ** 2), 0.35, 1.1)  # lit top-left
        ang, period = rng.uniform(0, math.pi), max(3.0, a / 6)
        tex = 1 + 0.2 * np.sin(2 * math.pi * (xx * math.cos(ang) + yy * math.sin(ang)) / period)
        spots = np.ones((size, size), np.float32)
        for _ in range(10):
            centre = tuple(int(v) for v in rng.uniform(c - a, c + a, 2))
            cv2.circle(spots, centre, max(1, int(rng.uniform(0.05, 0.15) * a)), 0.55, -1, cv2.LINE_AA)
        mult = shade * tex * spots * (1 + 0.05 * rng.standard_normal((size, size)).astype(np.float32))
        sprite = np.clip(_hsv(hue, 0.7, 0.85) * mult[..., None], 0, 255).astype(np.uint8)
        inside = (xx / a) ** 2 + (yy / b) ** 2 <= 1
        return sprite, float((sprite[inside].astype(np.float32) @ _LUMA).mean())

    def recolour(self, rgb: np.ndarray) -> np.ndarray:
        """The planted edit: paint pixels the edit colour, scaled by their luma so the shading stays.

        Args:
            rgb (np.ndarray): (..., 3) uint8 pixels (the object's).

        Returns:
            np.ndarray: same shape, uint8.
        """
        # One 3x3 matrix (paint colour x luma row): cv2.transform rounds and saturates, and is fast.
        flat = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1, 1, 3)
        return cv2.transform(flat, self._recolour_matrix).reshape(rgb.shape)

    def camera_offset(self, t: int) -> tuple[float, float]:
        """(x, y) of the frame's top-left corner in the world at frame ``t``, sub-pixel."""
        ax, wx, fx, ay, wy, fy = self._cam
        return self._mx + ax * math.sin(wx * t + fx), self._my + ay * math.sin(wy * t + fy)

    def _object_pose(self, t: int) -> tuple[float, float, float]:
        px, wx, fx, py, wy, fy, theta0, spin = self._path
        h, w = self.config.height, self.config.width
        return w / 2 + px * math.sin(wx * t + fx), h / 2 + py * math.sin(wy * t + fy), theta0 + spin * t

    def _render(self, t: int, with_edit: bool = True):
        """(original, edited or None, region or None) of frame ``t``; the edit redoes only the object's box."""
        cfg = self.config
        if not 0 <= t < cfg.frames:
            raise IndexError(f"frame {t} out of range 0..{cfg.frames - 1}")
        h, w = cfg.height, cfg.width
        ox, oy = self.camera_offset(t)
        frame = cv2.warpAffine(self._world, np.float32([[1, 0, ox], [0, 1, oy]]), (w, h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        # The object's bounding box, and the affine map from box pixels to sprite pixels.
        (cx, cy, th), c = self._object_pose(t), (self._sprite.shape[0] - 1) / 2
        co, si = math.cos(th), math.sin(th)
        ex = math.sqrt((self._a * co) ** 2 + (self._b * si) ** 2)
        ey = math.sqrt((self._a * si) ** 2 + (self._b * co) ** 2)
        x0, x1 = max(0, int(cx - ex) - 1), min(w, int(cx + ex) + 3)
        y0, y1 = max(0, int(cy - ey) - 1), min(h, int(cy + ey) + 3)
        m = np.float32([[co, si, co * (x0 - cx) + si * (y0 - cy)], [-si, co, -si * (x0 - cx) + co * (y0 - cy)]])
        # Exact ellipse test (x/a)^2 + (y/b)^2 <= 1 in object coordinates, not a warped (blurred) mask; built
        # from a row and a column term per axis, so only a few full-box operations.
        u, v = np.arange(x1 - x0, dtype=np.float32)[None], np.arange(y1 - y0, dtype=np.float32)[:, None]
        qx = (m[0, 0] / self._a) * u + m[0, 2] / self._a + (m[0, 1] / self._a) * v
        qy = (m[1, 0] / self._b) * u + m[1, 2] / self._b + (m[1, 1] / self._b) * v
        inside = np.multiply(qx, qx, out=qx) + np.multiply(qy, qy, out=qy) <= 1
        sel = inside.view(np.uint8)   # cv2.copyTo's mask; ~50x faster than np.copyto(where=) here
        m[:, 2] += c
        obj = cv2.warpAffine(self._sprite, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        box = (slice(y0, y1), slice(x0, x1))
        cv2.copyTo(obj, sel, frame[box])   # in place: frame[box] is a view
        # Sensor: gain flicker, then noise; both applied identically to the edited frame.
        k, q = t % NOISE_BANK, (389 * (t // NOISE_BANK) + 7 * self._seed) % (NOISE_PAD + 1) ** 2
        dy, dx = divmod(q, NOISE_PAD + 1)
        noise = self._noise[k][dy:dy + h, dx:dx + w]
        gain = 1 + 0.01 * float(np.random.default_rng([self._seed, 1, t]).standard_normal())
        original = cv2.addWeighted(frame, gain, noise, 1.0, 0.0, dtype=cv2.CV_8U)
        if not with_edit:
            return original, None, None
        painted = frame[box].copy()
        cv2.copyTo(self.recolour(obj), sel, painted)
        painted = cv2.addWeighted(painted, gain, noise[box], 1.0, 0.0, dtype=cv2.CV_8U)
        edited = original.copy()
        # Only the object's pixels are taken from the box: elsewhere edited stays bit-identical to original.
        cv2.copyTo(painted, sel, edited[box])
        region = np.zeros((h, w), bool)
        region[box] = inside
        return original, edited, region

    def _cached(self, t: int):
        # original(t), edited(t), true_region(t) are often asked for in a row: render once, hand out copies.
        if self._cache is None or self._cache[0] != t:
            self._cache = (t, self._render(t))
        return self._cache[1]

    def original(self, t: int) -> np.ndarray:
        """Frame ``t`` of the original clip, (H, W, 3) uint8 RGB."""
        return self._cached(t)[0].copy()

    def edited(self, t: int) -> np.ndarray:
        """Frame ``t`` with the edit carried to it, (H, W, 3) uint8 RGB; equals :meth:`original` off the region."""
        return self._cached(t)[1].copy()

    def true_region(self, t: int) -> np.ndarray:
        """The object's mask in frame ``t``, (H, W) bool: the pixels the edit changes."""
        return self._cached(t)[2].copy()

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(original, edited, region) for t = 0 .. frames - 1, rendered one at a time."""
        for t in range(self.config.frames):
            yield self._render(t)

    def _tones(self, start: int, n: int) -> np.ndarray:
        """(2, n) float32 planar stereo samples ``start .. start + n`` of a chord fixed by the seed."""
        notes = 220 * 2 ** (np.random.default_rng([self._seed, 2]).integers(0, 24, 3) / 12)
        s = (np.arange(start, start + n, dtype=np.float64) / AUDIO_RATE)[None]
        left = sum(0.08 * np.sin(2 * math.pi * f * s) for f in notes)
        right = sum(0.08 * np.sin(2 * math.pi * f * 1.005 * s + 1.0) for f in notes)
        return np.concatenate([left, right]).astype(np.float32)

    def write(self, directory: str) -> FootageFiles:
        """Encode the original clip to ``directory``/original.mp4 frame by frame, then the first-frame PNGs.

        ``edited_first_frame.png`` is the edit applied to the *decoded* frame 0 (recolouring the pixels of
        ``true_region(0)`` with :meth:`recolour`), not ``edited(0)``: so it equals ``identity_first_frame.png``
        exactly off the region, and a null edit and the real edit differ only where the edit is.

        Args:
            directory (str): a local directory, created if missing; existing files are replaced.

        Returns:
            FootageFiles: the paths written.
        """
        cfg = self.config
        os.makedirs(directory, exist_ok=True)
        video = os.path.join(directory, "original.mp4")
        partial = video + ".partial"   # renamed when complete, so an existing original.mp4 is whole
        n_samples = round(cfg.frames * AUDIO_RATE / Fraction(cfg.fps))
        with av.open(partial, "w", format="mp4", options={"movflags": "+faststart"}) as out:
            vs = out.add_stream("libx264", rate=cfg.fps)
            vs.width, vs.height, vs.pix_fmt = cfg.width, cfg.height, "yuv420p"
            cc = vs.codec_context
            cc.time_base, cc.thread_count = 1 / Fraction(cfg.fps), ENCODE_THREADS
            # Tagged BT.709 limited range, and converted with that same matrix below.
            cc.colorspace, cc.color_range = 1, ColorRange.MPEG      # 1 == AVCOL_SPC_BT709
            cc.color_primaries, cc.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
            # mbtree off: with it x264 was measured not to rewrite byte-identical files (see genprop.video).
            vs.options = {"crf": str(int(cfg.crf)), "x264-params": "mbtree=0"}
            aus = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo", bit_rate=128000) if cfg.audio else None
            sws, sent = VideoReformatter(), 0
            for t in range(cfg.frames):
                rgb = av.VideoFrame.from_ndarray(self._render(t, with_edit=False)[0], format="rgb24")
                yuv = sws.reformat(rgb, format="yuv420p", dst_colorspace=Colorspace.ITU709,
                                   dst_color_range=ColorRange.MPEG, interpolation=_SWS_FLAGS)
                yuv.color_primaries, yuv.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
                yuv.pts, yuv.time_base = t, 1 / Fraction(cfg.fps)
                out.mux(vs.encode(yuv))
                # Audio up to the end of this video frame, so the muxer can interleave as it goes.
                end = n_samples if t == cfg.frames - 1 else round((t + 1) * AUDIO_RATE / Fraction(cfg.fps))
                while cfg.audio and sent < end:
                    n = min(AUDIO_FRAME, end - sent)
                    af = av.AudioFrame.from_ndarray(self._tones(sent, n), format="fltp", layout="stereo")
                    af.sample_rate, af.pts, af.time_base = AUDIO_RATE, sent, Fraction(1, AUDIO_RATE)
                    out.mux(aus.encode(af))
                    sent += n
            out.mux(vs.encode(None) + (aus.encode(None) if aus else []))
        os.replace(partial, video)
        with av.open(video) as inp:
            first = next(inp.decode(video=0))
            # Source matrix and range explicit: PyAV 18 would fall back to the frame's own tags (which the file
            # has), but the PNG must not depend on them. Default scaler flags on purpose: swscale's default
            # YUV->RGB path is ~1-1.5 levels dark (ACCURATE_RND|FULL_CHR_H_INT is not), but it is what plain
            # PyAV and decord give for this file, so the null edit equals the frame every reader here decodes.
            decoded = first.to_ndarray(format="rgb24", src_colorspace=Colorspace.ITU709,
                                       src_color_range=ColorRange.MPEG)
        edited, region = decoded.copy(), self.true_region(0)
        edited[region] = self.recolour(decoded[region])
        identity_png = os.path.join(directory, "identity_first_frame.png")
        edited_png = os.path.join(directory, "edited_first_frame.png")
        for path, img in ((identity_png, decoded), (edited_png, edited)):
            if not cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {path}")
        return FootageFiles(video=video, edited_first_frame=edited_png, identity_first_frame=identity_png,
                            config=cfg)
