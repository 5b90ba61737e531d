"""The pieces of propagation, without a model: working size, windows and their blending, drift, the composite's
region and seam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genprop.propagation.long_video import drift_report, stream_windows, window_spans
from genprop.propagation.resize import FrameMap, working_size


def test_working_size_keeps_aspect():
    assert working_size(720, 1280, 32 * 32, 8) == (24, 40)
    assert working_size(480, 832, 480 * 832, 16) == (480, 832)
    h, w = working_size(33, 47, 1024, 8)
    assert h % 8 == 0 and w % 8 == 0 and abs(w / h - 47 / 33) < 0.25
    # a smooth image survives the round trip through the working size
    yy, xx = np.mgrid[0:33, 0:47]
    img = np.stack([xx * 5, yy * 7, xx + yy], -1).astype(np.uint8)
    fm = FrameMap((33, 47), (24, 32))
    back = fm.from_working(fm.to_working(img[None]))
    assert back.shape == (1, 33, 47, 3) and np.abs(back[0].astype(int) - img).mean() < 4



def test_window_spans_and_blending():
    assert window_spans(13, 5, 2) == [(0, 5), (3, 8), (6, 11), (9, 13)]
    assert window_spans(4, 5, 2) == [(0, 4)]
    with pytest.raises(ValueError):
        window_spans(13, 5, 5)
    seen, calls = [], []

    def sample(src, first, k):  # window k outputs the constant k + 1; records the first frame it got
        seen.append(float(first.mean()))
        calls.append(src[0, :, 0, 0, 0].tolist())
        t = src.shape[1]
        return torch.full((1, t, 3, 2, 2), float(k + 1)), torch.full((t, 1, 1), float(k + 1))

    def to_working(items):  # item i -> a (1, t, 3, 2, 2) source whose value is i
        return torch.tensor(items, dtype=torch.float32).view(1, -1, 1, 1, 1).expand(-1, -1, 3, 2, 2)

    consumed = []

    def frames():  # records how far the stream was read when each window ran
        for i in range(13):
            consumed.append(i)
            yield i

    out = []
    for fin in stream_windows(sample, frames(), to_working, torch.full((1, 3, 2, 2), 7.0), 5, 2):
        out.append(fin)
        assert max(consumed) <= fin.span[1]  # one frame of look-ahead, never the whole video
    assert [f.span for f in out] == window_spans(13, 5, 2) == [(0, 5), (3, 8), (6, 11), (9, 13)]
    assert [f.items for f in out] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11, 12]]
    assert calls == [[0, 1, 2, 3, 4], [3, 4, 5, 6, 7], [6, 7, 8, 9, 10], [9, 10, 11, 12]]
    # window 0 starts from the edited frame; window k from the generated frame s_k (blended output so far)
    assert seen[0] == 7.0 and seen[1] == 1.0 and seen[2] == 2.0  # frame 6: past window 1's overlap
    v = torch.cat([f.video[:, 0, 0, 0] for f in out])
    assert v[:3].tolist() == [1, 1, 1]
    assert v[3].item() == pytest.approx(1 * 2 / 3 + 2 * 1 / 3) and v[4].item() == pytest.approx(1 / 3 + 2 * 2 / 3)
    assert v[5].item() == 2 and v[12].item() == 4 and out[-1].mask[-1, 0, 0].item() == 4
    assert torch.cat([f.source[:, 0, 0, 0] for f in out]).tolist() == list(range(13))



def test_drift_report():
    orig = np.full((6, 4, 4, 3), 100, np.uint8)
    out = orig.copy()
    out[3:] += 10  # the second window drifted
    rep = drift_report(out, orig, np.zeros((6, 4, 4), bool), [(0, 3), (2, 6)])
    assert rep["windows"][0]["psnr_m"] == 100.0
    assert rep["windows"][1]["psnr_m"] == pytest.approx(10 * np.log10(255**2 / (0.75 * 100)))
    assert rep["drift_db"] == pytest.approx(100.0 - rep["windows"][1]["psnr_m"], abs=1e-3)



def test_diff_region_follows_the_edit_and_drops_unconnected_error():
    from genprop.propagation.composite import DiffRegion

    src = np.full((5, 12, 20, 3), 100, np.uint8)
    gen = src.copy()
    first = np.zeros((12, 20), bool)
    first[4:7, 2:5] = True
    for t in range(1, 5):  # the edit moves one pixel right per frame; a model error sits far away from t = 2 on
        gen[t, 4:7, 2 + t:5 + t] = 200
        if t >= 2:
            gen[t, 0:2, 17:20] = 160
    d = DiffRegion(threshold=24, dilate=0, reach=1)
    assert np.array_equal(d.first(first), first)
    for t in range(1, 5):
        region = d.next(gen[t], src[t])
        want = np.zeros((12, 20), bool)
        want[4:7, 2 + t:5 + t] = True
        assert np.array_equal(region, want), t  # the moving edit, and not the error
    assert not DiffRegion(24, 1).first(np.zeros((12, 20), bool)).any()  # the null edit: no region at all



def test_compositor_keeps_the_input_outside_the_region_and_its_seam():
    from genprop.propagation.composite import Compositor

    rng = np.random.default_rng(0)
    native = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    generated = np.full((9, 16, 3), 250, np.uint8)
    comp = Compositor((90, 160), (9, 16), feather_px=6)
    work = np.zeros((9, 16), bool)
    work[3:5, 6:9] = True
    region = comp.upsample_region(work)
    assert region.any() and region.mean() < 0.1
    out = comp(native, generated, region)
    grown = cv2_dilate(region, 6)
    assert np.array_equal(out[~grown], native[~grown])  # the input's own pixels beyond the seam
    assert (out[region] == 250).all()  # the generated layer in full inside the region
    assert comp(native, generated, np.zeros((90, 160), bool)) is native  # an empty region: the input itself



def cv2_dilate(mask, px):
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0
