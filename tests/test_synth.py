"""Synthetic pairs: each augmentation's invariants, the routing table task by task, ratios, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from genprop.synth import (TRACK_PROMPT, PairSpec, SynthConfig, SyntheticPair, colour_fill, copy_paste, make_pair,
                           mask_fill, sample_spec)
from genprop.synth.sampler import SkipSample
from genprop.tasks import Task


def _clip(seed=0, t=5, h=32, w=40):
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)
    mask = np.zeros((t, h, w), bool)
    for i in range(t):  # a box that moves right one pixel a frame
        mask[i, 8:18, 5 + i:15 + i] = True
    return video, mask


def test_a_pair_is_made_by_an_augmentation_task():
    video, mask = _clip()
    for task in (Task.DEFAULT, "mask_fill", 2):
        with pytest.raises(ValueError, match="task must be one of"):
            SyntheticPair(task=task, sce_video=video, target_video=video, mask=mask, prompt="", object_id=1)


def test_mask_fill_changes_only_the_filled_region_and_routes_v_to_target():
    video, mask = _clip()
    pair = mask_fill(video, mask, dilate=1)
    assert pair.task == Task.MASK_FILL and pair.task_id == 2 and pair.prompt == ""
    assert (pair.mask >= mask).all()  # the filled region covers the object
    outside = ~pair.mask
    assert np.array_equal(pair.sce_video[outside], video[outside])
    assert not np.array_equal(pair.sce_video[pair.mask], video[pair.mask])  # something was filled
    # routing: E gets V-hat, G gets v1, the target is V
    assert np.array_equal(pair.target_video, video)
    assert np.array_equal(pair.cond_frame, video[0])


def test_mask_fill_composites_a_leaky_inpainter():
    video, mask = _clip()
    pair = mask_fill(video, mask, inpainter=lambda f, m: np.zeros_like(f), dilate=0)
    assert np.array_equal(pair.sce_video[~mask], video[~mask])
    assert (pair.sce_video[mask] == 0).all()


def test_colour_fill_paints_only_the_region_and_routes_painted_video_to_target():
    video, mask = _clip()
    pair = colour_fill(video, mask, (255, 0, 7))
    assert pair.task == Task.COLOUR_FILL and pair.task_id == 3 and pair.prompt == TRACK_PROMPT
    assert np.array_equal(pair.mask, mask)
    # routing: E gets V, G gets painted v1, target is the painted video
    assert np.array_equal(pair.sce_video, video)
    assert (pair.target_video[mask] == [255, 0, 7]).all()
    assert np.array_equal(pair.target_video[~mask], video[~mask])
    assert np.array_equal(pair.cond_frame, pair.target_video[0])
    assert not np.array_equal(pair.cond_frame, video[0])


def _effects(mask):
    """A 'shadow' under the object: the two rows below its box, moving with it."""
    fx = np.zeros_like(mask)
    fx[:, 18:20] = mask[:, 16:18]
    return fx


def test_colour_fill_tints_the_effects_and_tracks_them_with_the_object():
    from genprop.synth.colour_fill import EFFECT_PAINT_ALPHA

    video, mask = _clip()
    fx = _effects(mask)
    pair = colour_fill(video, mask, (255, 0, 7), effects=fx)
    assert np.array_equal(pair.mask, mask | fx) and pair.info["effects"] is True
    assert (pair.target_video[mask] == [255, 0, 7]).all()
    want = np.rint(video[fx] * (1 - EFFECT_PAINT_ALPHA) + np.array([255, 0, 7]) * EFFECT_PAINT_ALPHA)
    np.testing.assert_array_equal(pair.target_video[fx], want.astype(np.uint8))
    assert np.array_equal(pair.target_video[~(mask | fx)], video[~(mask | fx)])
    assert np.array_equal(pair.sce_video, video)
    with pytest.raises(ValueError, match="effects"):
        colour_fill(video, mask, (255, 0, 7), effects=fx[:2])


def test_colour_fill_draws_its_effect_paint_per_pair_from_the_configured_range():
    video, mask = _clip()
    masks, fx = mask[None], _effects(mask)[None]
    ranged = SynthConfig(colour_fill_effect_paint=(0.0, 0.5))
    alphas = []
    for seed in range(6):
        spec = PairSpec(task=Task.COLOUR_FILL, seed=seed, colour=(255, 0, 7), prompt="")
        pair = make_pair(spec, video, masks, (1,), ranged, effects=fx)
        a = pair.info["effect_alpha"]
        want = np.rint(video[fx[0]] * (1 - a) + np.array([255, 0, 7]) * a).astype(np.uint8)
        np.testing.assert_array_equal(pair.target_video[fx[0]], want)
        assert np.array_equal(pair.mask, mask | fx[0])  # tinted or not, the effects are in the region
        # a fixed strength keeps the pair the default config made
        fixed = make_pair(spec, video, masks, (1,), SynthConfig(), effects=fx)
        assert fixed.info["effect_alpha"] == 0.5
        alphas.append(a)
    assert min(alphas) >= 0.0 and max(alphas) <= 0.5 and len(set(alphas)) == 6
    unchanged = colour_fill(video, mask, (255, 0, 7), effects=fx[0], effect_alpha=0.0)
    assert np.array_equal(unchanged.target_video[fx[0]], video[fx[0]])
    with pytest.raises(ValueError, match="colour_fill_effect_paint"):
        SynthConfig(colour_fill_effect_paint=(0.6, 0.5))
    with pytest.raises(ValueError, match="effect_alpha"):
        colour_fill(video, mask, (255, 0, 7), effects=fx[0], effect_alpha=1.5)


def test_mask_fill_fills_the_effects_with_the_object():
    video, mask = _clip()
    fx = _effects(mask)
    pair = mask_fill(video, mask, inpainter=lambda f, m: np.zeros_like(f), dilate=0, effects=fx)
    assert np.array_equal(pair.mask, mask | fx)
    assert (pair.sce_video[mask | fx] == 0).all() and np.array_equal(pair.target_video, video)
    grown = mask_fill(video, mask, dilate=1, effects=fx).mask  # dilation grows the union, effects included
    assert np.array_equal(grown, _grow(mask | fx, 1)) and (grown & fx).sum() == fx.sum()


def _grow(mask, d):
    import cv2

    if d == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * d + 1, 2 * d + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) for m in mask]).astype(bool)


@pytest.mark.parametrize("task", [Task.MASK_FILL, Task.COLOUR_FILL])
@pytest.mark.parametrize("dilate", [0, 1])
def test_make_pair_uses_the_chosen_objects_effects_unless_switched_off(task, dilate):
    video, mask = _clip()
    other = np.roll(mask, 12, axis=2)
    masks, fx = np.stack([mask, other]), np.stack([_effects(mask), np.zeros_like(mask)])
    switch = "mask_fill_effects" if task == Task.MASK_FILL else "colour_fill_effects"
    grow = dilate if task == Task.MASK_FILL else 0  # colour fill paints the mask as it is
    seen = set()
    for seed in range(8):
        spec = PairSpec(task=task, seed=seed, colour=(1, 2, 3), prompt="")
        on = make_pair(spec, video, masks, (1, 2), SynthConfig(dilate=dilate), effects=fx)
        off = make_pair(spec, video, masks, (1, 2), SynthConfig(dilate=dilate, **{switch: False}), effects=fx)
        k = on.object_id - 1
        seen.add(k)
        assert off.object_id == on.object_id
        assert np.array_equal(on.mask, _grow(masks[k] | fx[k], grow))  # the object's effects, when it has them
        assert np.array_equal(off.mask, _grow(masks[k], grow))
    assert seen == {0, 1}


def test_copy_paste_pastes_only_where_its_mask_says_and_follows_the_donor():
    video, _ = _clip(0)
    donor, dmask = _clip(1)
    pair = copy_paste(video, donor, dmask, np.random.default_rng(3), scale_range=(1.0, 1.0), object_id=7)
    assert pair.task == Task.COPY_PASTE and pair.task_id == 1 and pair.object_id == 7
    assert pair.mask[0].any()
    assert np.array_equal(pair.sce_video[~pair.mask], video[~pair.mask])
    # at scale 1 the pasted pixels are the donor's, shifted by an integer-ish offset: same area each frame
    assert all(pair.mask[i].sum() <= dmask[i].sum() for i in range(len(dmask)))
    # the pasted object moves as the donor's does (its box shifts right one pixel a frame while fully inside)
    xs = [np.nonzero(pair.mask[i].any(0))[0] for i in range(len(dmask))]
    if all(len(x) == 10 for x in xs):
        assert [x.min() for x in xs] == [xs[0].min() + i for i in range(len(xs))]
    # routing: E gets V + object, G gets v1, target V
    assert np.array_equal(pair.target_video, video)
    assert np.array_equal(pair.cond_frame, video[0])
    assert not np.array_equal(pair.sce_video, video)


def test_ratios_hold_over_many_samples():
    rng = np.random.default_rng(0)
    config = SynthConfig()
    n = 4000
    tasks = [sample_spec(rng, config).task for _ in range(n)]
    for task, ratio in zip((Task.COPY_PASTE, Task.MASK_FILL, Task.COLOUR_FILL), (0.5, 0.375, 0.125)):
        assert abs(tasks.count(task) / n - ratio) < 0.03, task
    only = SynthConfig(ratios=(0, 0, 1))
    assert {sample_spec(rng, only).task for _ in range(50)} == {Task.COLOUR_FILL}
    specs = [sample_spec(rng, config) for _ in range(200)]
    assert all((s.prompt == TRACK_PROMPT) == (s.task == Task.COLOUR_FILL) for s in specs)


@pytest.mark.parametrize("task", [Task.COPY_PASTE, Task.MASK_FILL, Task.COLOUR_FILL])
def test_same_seed_same_bytes(task):
    video, mask = _clip()
    masks = np.stack([mask, np.roll(mask, 10, axis=1)])
    spec = PairSpec(task=task, seed=11, colour=(1, 2, 3), prompt="")
    a = make_pair(spec, video, masks, (1, 2), SynthConfig())
    b = make_pair(spec, video, masks, (1, 2), SynthConfig())
    assert a.sce_video.tobytes() == b.sce_video.tobytes() and a.mask.tobytes() == b.mask.tobytes()
    assert a.target_video.tobytes() == b.target_video.tobytes() and a.object_id == b.object_id
    c = make_pair(PairSpec(task=task, seed=12, colour=(1, 2, 3), prompt=""), video, masks, (1, 2), SynthConfig())
    if task == Task.COPY_PASTE:  # another seed, another placement
        assert c.sce_video.tobytes() != a.sce_video.tobytes()


def test_objects_below_the_minimum_area_are_skipped():
    video, mask = _clip()
    tiny = np.zeros_like(mask)
    tiny[:, 0, 0] = True
    spec = PairSpec(task=Task.MASK_FILL, seed=0, colour=(0, 0, 0), prompt="")
    with pytest.raises(SkipSample, match="minimum area"):
        make_pair(spec, video, tiny[None], (1,), SynthConfig(min_object_area=0.01))
    pair = make_pair(spec, video, np.stack([tiny, mask]), (1, 2), SynthConfig(min_object_area=0.01))
    assert pair.object_id == 2
