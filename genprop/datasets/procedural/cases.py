"""Benchmark edit cases with exact ground truth, each rendered from an edited scene description.

Tasks (``Case.task``):

- ``remove``: object k with its shadow and reflection; mask = object k + its effects (original).
- ``replace``: object k becomes another shape/colour on the same trajectory; mask = old object +
  effects, union new object + effects.
- ``insert``: a new object (in front of the others) with its own motion and effects; mask = it + effects.
- ``background``: a different wall/floor texture; shadows and reflections are re-rendered on it;
  mask = pixels no object covers.
- ``track``: object k painted one solid colour in every frame (its reflection follows);
  mask = object k + its effects; prompt "track colored regions".

In every case the target equals the original exactly outside the mask (checked on creation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genprop.datasets.procedural.config import TASKS, WorldConfig
from genprop.datasets.procedural.render import RenderedVideo, render
from genprop.datasets.procedural.scene import (
    FILL_COLORS, Scene, random_background, random_object, reshape_object)

# Salts that give each task its own random stream (stable: do not renumber).
_SALT = {"remove": 101, "replace": 102, "insert": 103, "background": 104, "track": 105}
TRACK_PROMPT = "track colored regions"


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
        case_id (str): ``<video_id>_<task>[_o<k>]`` (dot-free, stable).
        task (str): one of :data:`TASKS`.
        video_id (str): the source video.
        object_id (int | None): the object edited (``insert``: the new object's id), None for
            ``background``.
        prompt (str): a short instruction, e.g. ``"remove the red star"``.
        original, target (np.ndarray): ``(T, H, W, 3)`` uint8.
        mask (np.ndarray): ``(T, H, W)`` bool edit region (tracking target for ``track``).
        effect_mask (np.ndarray | None): ``(T, H, W)`` bool, the shadow/reflection part of the
            mask (``remove`` and ``track`` only).
        seed (int): the scene seed.
        fps (str): rational string.
        edit (dict): JSON-able details of the edit (object names, fill colour, background).
    """

    case_id: str
    task: str
    video_id: str
    object_id: int | None
    prompt: str
    original: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    effect_mask: np.ndarray | None
    seed: int
    fps: str
    edit: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(frames, height, width)``."""
        return tuple(int(s) for s in self.original.shape[:3])  # type: ignore[return-value]

    def describe(self) -> dict:
        """``case.json`` without ``files``."""
        t, h, w = self.shape
        return {"case_id": self.case_id, "task": self.task, "video_id": self.video_id,
                "object_id": self.object_id, "prompt": self.prompt, "frames": t, "height": h,
                "width": w, "fps": self.fps, "seed": int(self.seed), "edit": self.edit}


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _rng(scene: Scene, task: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(scene.seed), _SALT[task]]))


def rank_objects(scene: Scene, original: RenderedVideo) -> list[int]:
    """Ids of the objects visible in some frame, best visible first (largest minimum visible
    area over frames, then mean); all ids if none is visible."""
    keys = []
    for o in scene.objects:
        area = (original.ids == o.id).reshape(original.ids.shape[0], -1).sum(1)
        keys.append((-int(area.min()), -float(area.mean()), o.id))
    ranked = [k[2] for k in sorted(keys)]
    visible = [k[2] for k in sorted(keys) if k[1] < 0]
    return visible or ranked


def choose_object(scene: Scene, task: str, original: RenderedVideo) -> int | None:
    """The object a case of ``task`` edits: remove/replace/track take the 1st/2nd/3rd best
    visible object (cycling), insert the next free id, background none."""
    if task == "background":
        return None
    if task == "insert":
        return max((o.id for o in scene.objects), default=0) + 1
    ranked = rank_objects(scene, original)
    return ranked[{"remove": 0, "replace": 1, "track": 2}[task] % len(ranked)]


def make_case_id(video_id: str, task: str, object_id: int | None) -> str:
    """``<video_id>_<task>_o<k>``, or ``<video_id>_background``."""
    return f"{video_id}_{task}" if object_id is None else f"{video_id}_{task}_o{object_id}"


def _fill_color(rgb: tuple[int, int, int], second: tuple[int, int, int]) -> tuple[int, int, int]:
    """The fill colour farthest from both of an object's colours."""
    def dist(c):
        return min(sum((a - b) ** 2 for a, b in zip(c, x)) for x in (rgb, second))
    return max(FILL_COLORS, key=dist)


def _check(case_id: str, original: np.ndarray, target: np.ndarray, mask: np.ndarray) -> None:
    if not mask.any():
        raise RuntimeError(f"{case_id}: empty edit mask")
    outside = ~mask
    if not np.array_equal(original[outside], target[outside]):
        raise RuntimeError(f"{case_id}: target differs from the original outside the edit mask")


def make_case(scene: Scene, video_id: str, task: str, *, original: RenderedVideo | None = None,
              object_id: int | None = None) -> Case:
    """One case of ``task`` for ``scene``.

    Args:
        scene (Scene): the source scene.
        video_id (str): its video id (used in the case id).
        task (str): one of :data:`TASKS`.
        original (RenderedVideo | None): ``render(scene)``, if already computed.
        object_id (int | None): the object to edit (remove/replace/track); by default
            :func:`choose_object`'s pick. Ignored by insert and background.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {TASKS}")
    original = original if original is not None else render(scene)
    rng = _rng(scene, task)
    effect_mask = None
    used_shapes = tuple(o.shape for o in scene.objects)
    used_colors = tuple(o.color_name for o in scene.objects)
    if task in ("insert", "background") or object_id is None:
        object_id = choose_object(scene, task, original)

    if task == "remove":
        obj = scene.object(object_id)
        target = render(scene, without=(object_id,))
        mask = original.region(object_id)
        effect_mask = original.effects[object_id].copy()
        prompt = f"remove the {obj.name}"
        edit = {"object": obj.name}
    elif task == "replace":
        old = scene.object(object_id)
        others = [o for o in scene.objects if o.id != object_id]
        new = reshape_object(old, rng, avoid=tuple(o.shape for o in others),
                             avoid_colors=tuple(o.color_name for o in others))
        result = render(scene, replace={object_id: new})
        target = result.frames
        mask = original.region(object_id) | result.region(object_id)
        prompt = f"replace the {old.name} with {_article(new.name)}"
        edit = {"object": old.name, "new_object": new.name, "new_texture": new.texture}
    elif task == "insert":
        new_id = object_id
        depth = max((o.depth for o in scene.objects), default=0.0) + 1.0
        new = random_object(rng, new_id, frames=scene.frames, width=scene.width, height=scene.height,
                            ground=scene.ground, depth=depth, avoid=used_shapes, avoid_colors=used_colors)
        result = render(scene, extra=(new,))
        target = result.frames
        mask = result.region(new_id)
        prompt = f"add {_article(new.name)}"
        edit = {"new_object": new.name, "new_texture": new.texture, "motion": new.motion}
    elif task == "background":
        bg = random_background(rng, exclude_kind=scene.background.wall_kind)
        target = render(scene, background=bg).frames
        mask = original.ids == 0
        prompt = f"change the background to {bg.describe()}"
        edit = {"background": bg.describe(), "wall": bg.wall_kind, "floor": bg.floor_kind}
    else:  # track
        obj = scene.object(object_id)
        color = _fill_color(obj.color, obj.texture_color)
        target = render(scene, fill={object_id: color}).frames
        mask = original.region(object_id)
        effect_mask = original.effects[object_id].copy()
        prompt = TRACK_PROMPT
        edit = {"object": obj.name, "fill_color": list(color)}

    case_id = make_case_id(video_id, task, object_id)
    if isinstance(target, RenderedVideo):
        target = target.frames
    _check(case_id, original.frames, target, mask)
    return Case(case_id=case_id, task=task, video_id=video_id, object_id=object_id, prompt=prompt,
                original=original.frames, target=target, mask=mask, effect_mask=effect_mask,
                seed=scene.seed, fps=scene.fps, edit=edit)


def make_cases(scene: Scene, video_id: str, config: WorldConfig | None = None, *,
               original: RenderedVideo | None = None) -> list[Case]:
    """One case per task in ``config.tasks`` (all tasks by default), in that order."""
    tasks = (config or WorldConfig()).tasks
    original = original if original is not None else render(scene)
    return [make_case(scene, video_id, task, original=original) for task in tasks]
