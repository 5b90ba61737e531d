"""Which augmentation makes a pair (ratios 0.5 / 0.375 / 0.125), on which object, and the pair itself."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genprop.synth.colour_fill import colour_fill
from genprop.synth.copy_paste import copy_paste
from genprop.synth.mask_fill import Inpainter, mask_fill, opencv_inpainter
from genprop.synth.pair import TRACK_PROMPT, SyntheticPair
from genprop.tasks import AUGMENTATION_TASKS, Task


class SkipSample(ValueError):
    """A planned sample that cannot be made from its data (e.g. every object below the minimum area)."""


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic pairs are made.

    Args:
        ratios (tuple[float, float, float], default (0.5, 0.375, 0.125)): relative frequency of copy-and-paste,
            mask-and-fill and colour fill (``genprop.tasks.AUGMENTATION_TASKS``; normalised; a zero disables a
            task).
        min_object_area (float, default 0.002): an object smaller than this fraction of the frame in the clip's
            first frame is not used (G would not see it).
        scale_range (tuple[float, float], default (0.5, 1.5)): copy-and-paste scale range.
        dilate (int, default 2): mask-and-fill mask growth in pixels.
        inpaint_radius (int, default 3): OpenCV inpainting radius.
        colour_fill_effects (bool, default True): where the dataset annotates an object's shadow and reflection
            (``VideoRecord.effects``; the procedural world does), colour fill tints them with its paint and tracks
            them in the pair's mask, as a reflection of the painted object would show it.
        colour_fill_effect_paint (tuple[float, float], default (0.5, 0.5)): range of the strength with which colour
            fill paints those effects, drawn per pair (0: unchanged). An annotation that does not separate a shadow
            (which keeps its colour under a painted object) from a reflection (which shows the paint at its
            opacity) is best served by a range from 0, so that the mask's effects cannot be read off the tint.
        mask_fill_effects (bool, default True): likewise, mask-and-fill fills them with the object, so the SCE's
            source has neither. Neither has any effect on data without effect masks (docs/design-decisions.md,
            "Effects in the augmentations").
    """

    ratios: tuple[float, float, float] = (0.5, 0.375, 0.125)
    min_object_area: float = 0.002
    scale_range: tuple[float, float] = (0.5, 1.5)
    dilate: int = 2
    inpaint_radius: int = 3
    colour_fill_effects: bool = True
    colour_fill_effect_paint: tuple[float, float] = (0.5, 0.5)
    mask_fill_effects: bool = True

    def uses_effects(self, task: Task) -> bool:
        """Whether pairs of ``task`` use effect masks (a clip reads them only then).

        Args:
            task (Task): one of ``AUGMENTATION_TASKS``.
        """
        return (task == Task.COLOUR_FILL and self.colour_fill_effects) or \
            (task == Task.MASK_FILL and self.mask_fill_effects)

    def __post_init__(self):
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        object.__setattr__(self, "scale_range", tuple(float(s) for s in self.scale_range))
        object.__setattr__(self, "colour_fill_effect_paint", tuple(float(a) for a in self.colour_fill_effect_paint))
        lo, hi = self.colour_fill_effect_paint
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"colour_fill_effect_paint must be 0 <= lo <= hi <= 1, got {self.colour_fill_effect_paint}")
        if len(self.ratios) != 3 or min(self.ratios) < 0 or sum(self.ratios) <= 0:
            raise ValueError(f"ratios must be 3 non-negative numbers with a positive sum, got {self.ratios}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"scale_range must be 0 < lo <= hi, got {self.scale_range}")

    @classmethod
    def tiny(cls, **overrides) -> "SynthConfig":
        """The defaults, with a smaller inpainting radius for 32x32 clips."""
        return cls(**{**dict(inpaint_radius=2, dilate=1), **overrides})


@dataclass(frozen=True)
class PairSpec:
    """The random choices of one pair, drawn before any pixel is read (so a plan is cheap and reproducible).

    Attributes:
        task (Task): one of ``genprop.tasks.AUGMENTATION_TASKS``.
        seed (int): seeds everything the augmentation draws (object order, scale, position).
        colour (tuple[int, int, int]): the colour-fill colour (drawn for every task, used by colour fill).
        prompt (str): G's prompt ("track colored regions" for colour fill, else "").
    """

    task: Task
    seed: int
    colour: tuple[int, int, int]
    prompt: str


def sample_spec(rng: np.random.Generator, config: SynthConfig) -> PairSpec:
    """Draw a task by ``config.ratios``, a colour and a seed.

    Args:
        rng (np.random.Generator): the plan's generator.
        config (SynthConfig): ratios.
    """
    p = np.asarray(config.ratios) / sum(config.ratios)
    task = AUGMENTATION_TASKS[int(rng.choice(len(AUGMENTATION_TASKS), p=p))]
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    seed = int(rng.integers(0, 2**31 - 1))
    return PairSpec(task=task, seed=seed, colour=colour, prompt=TRACK_PROMPT if task == Task.COLOUR_FILL else "")


def choose_object(masks: np.ndarray, object_ids, rng: np.random.Generator, min_area: float
                  ) -> tuple[int, np.ndarray, int]:
    """The first object, in a seeded order, whose first-frame area reaches ``min_area``.

    Args:
        masks (np.ndarray): (K, T, H, W) bool.
        object_ids (Sequence[int]): id of each of the K masks.
        rng (np.random.Generator): orders the candidates.
        min_area (float): minimum first-frame area as a fraction of the frame.

    Returns:
        (object id, its (T, H, W) mask, its index k in ``masks``).

    Raises:
        SkipSample: no object is large enough (the reason gives the largest area found).
    """
    k, _, h, w = masks.shape
    areas = masks[:, 0].reshape(k, -1).mean(axis=1) if k else np.zeros(0)
    for i in rng.permutation(k):
        if areas[i] >= min_area and areas[i] > 0:
            return int(object_ids[i]), masks[i], int(i)
    best = float(areas.max()) if k else 0.0
    raise SkipSample(f"no object reaches the minimum area {min_area:g} of the frame in the first frame "
                     f"(largest {best:.4g}, {k} objects)")


def make_pair(spec: PairSpec, video: np.ndarray, masks: np.ndarray, object_ids, config: SynthConfig,
              donor_video: np.ndarray | None = None, donor_masks: np.ndarray | None = None, donor_ids=None,
              inpainter: Inpainter | None = None, effects: np.ndarray | None = None) -> SyntheticPair:
    """Make the routed pair ``spec`` describes from one clip (and a donor clip for copy-and-paste).

    Args:
        spec (PairSpec): the task and its seed.
        video (np.ndarray): (T, H, W, 3) uint8.
        masks (np.ndarray): (K, T, H, W) bool instance masks of ``video``.
        object_ids (Sequence[int]): ids of the K masks.
        config (SynthConfig): augmentation parameters.
        donor_video, donor_masks, donor_ids: the donor clip for copy-and-paste (default: ``video`` itself).
        inpainter (Inpainter | None): mask-and-fill's inpainter (default OpenCV with ``config.inpaint_radius``).
        effects (np.ndarray | None): (K, T, H, W) bool effect masks of ``video``'s objects (shadow and
            reflection), used as ``config.colour_fill_effects`` / ``mask_fill_effects`` say; None: not annotated.

    Raises:
        SkipSample: no usable object.
    """
    rng = np.random.default_rng(spec.seed)
    if spec.task == Task.COPY_PASTE:
        if donor_video is None:
            donor_video, donor_masks, donor_ids = video, masks, object_ids
        oid, m, _ = choose_object(donor_masks, donor_ids, rng, config.min_object_area)
        return copy_paste(video, donor_video, m, rng, config.scale_range, object_id=oid)
    oid, m, k = choose_object(masks, object_ids, rng, config.min_object_area)
    fx = effects[k] if effects is not None and config.uses_effects(spec.task) else None
    if spec.task == Task.MASK_FILL:
        if inpainter is None:
            radius = config.inpaint_radius

            def inpainter(frames, region):
                return opencv_inpainter(frames, region, radius)
        return mask_fill(video, m, inpainter, config.dilate, object_id=oid, effects=fx)
    lo, hi = config.colour_fill_effect_paint
    # a fixed strength draws nothing, so pairs made with one stay what they were
    alpha = lo if lo == hi else float(rng.uniform(lo, hi))
    return colour_fill(video, m, spec.colour, object_id=oid, effects=fx, effect_alpha=alpha)
