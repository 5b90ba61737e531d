"""Evaluation metrics: PSNR_m, PSNR/SSIM against a target, PSNR in the effect region, IoU, J&F, CLIP-T, CLIP-I.

Conventions: videos are (T, H, W, 3) uint8; masks (T, H, W) bool. A metric that cannot be computed
(no pixels to compare, no CLIP weights) is ``None`` (null in JSON), never a made-up number. PSNR of
identical inputs is :data:`PSNR_CAP` (100 dB), never infinity, so ``metrics.json`` stays valid JSON.
"""

from __future__ import annotations

import logging
import math
import os

import cv2
import numpy as np
import torch

from genprop.models.backbones.conditioning import CLIP_MEAN, CLIP_STD

log = logging.getLogger(__name__)

PSNR_CAP = 100.0


# ------------------------------------------------------------------------------------ pixels
def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, max_value: float = 255.0) -> float | None:
    """PSNR in dB over the pixels where ``mask`` is True (all pixels when None); capped at 100 dB.

    Args:
        a (np.ndarray), b (np.ndarray): (T, H, W, 3) or (H, W, 3) images.
        mask (np.ndarray | None): (T, H, W) or (H, W) bool; every channel of a selected pixel counts.
        max_value (float, default 255): the peak value.

    Returns:
        float, or None when the mask selects no pixel.
    """
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        if mask.shape != a.shape[:-1]:
            raise ValueError(f"mask {mask.shape} does not match images {a.shape}")
        if not mask.any():
            return None
        diff = diff[mask]
    mse = float(np.mean(diff * diff))
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10 * math.log10(max_value * max_value / mse))


def rough_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate each frame of (T, H, W) bool by a (2 radius + 1) square (the paper's rough masks)."""
    if radius <= 0:
        return mask.astype(bool)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in mask])


def psnr_m(output: np.ndarray, original: np.ndarray, edit_mask: np.ndarray, edited_mask: np.ndarray | None = None,
           radius: int = 0) -> float | None:
    """PSNR_m: PSNR against the original outside the edit region.

    For shape changes pass both masks: the region is the union of the rough masks over the original
    and the edited objects, as the paper does.

    Args:
        output (np.ndarray), original (np.ndarray): (T, H, W, 3).
        edit_mask (np.ndarray): (T, H, W) bool, the edited region in the original.
        edited_mask (np.ndarray | None): (T, H, W) bool, the region of the edited object in the output.
        radius (int, default 0): dilation of the masks (rough masks).
    """
    region = edit_mask if edited_mask is None else (edit_mask | edited_mask)
    return psnr(output, original, ~rough_mask(region, radius))


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    # Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L = 255.
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over frames and RGB channels (Gaussian window 11, sigma 1.5), (T, H, W, 3) uint8."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    a = a.reshape(-1, *a.shape[-3:]).astype(np.float64)
    b = b.reshape(-1, *b.shape[-3:]).astype(np.float64)
    return float(np.mean([_ssim_channel(fa[..., c], fb[..., c]) for fa, fb in zip(a, b) for c in range(3)]))


# ------------------------------------------------------------------------------------- masks
def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape, over all frames together (1.0 when both empty)."""
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)) > 0


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = 0.008) -> float:
    """DAVIS boundary F-measure of one frame (H, W): boundaries matched within ``tolerance`` x the diagonal."""
    pb, gb = _boundary(pred), _boundary(gt)
    if not pb.any() and not gb.any():
        return 1.0
    if not pb.any() or not gb.any():
        return 0.0
    r = max(1, int(math.ceil(tolerance * math.hypot(*pred.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    gd, pd = cv2.dilate(gb.astype(np.uint8), kernel) > 0, cv2.dilate(pb.astype(np.uint8), kernel) > 0
    precision = (pb & gd).sum() / pb.sum()
    recall = (gb & pd).sum() / gb.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def j_and_f(pred: np.ndarray, gt: np.ndarray) -> dict:
    """DAVIS J (mean per-frame IoU), F (mean boundary F) and J&F (their mean) of (T, H, W) bool masks."""
    j = float(np.mean([iou(p, g) for p, g in zip(pred, gt)]))
    f = float(np.mean([boundary_f(p, g) for p, g in zip(pred, gt)]))
    return {"j": j, "f": f, "jf": (j + f) / 2}


# -------------------------------------------------------------------------------------- CLIP
class ClipScorer:
    """CLIP embeddings of frames and prompts from a ``transformers.CLIPModel``.

    Args:
        model (CLIPModel): the model (eval mode is set).
        tokenizer (callable | None): a Hugging Face tokenizer; None = a byte tokenizer (tiny test models
            have no vocabulary files): bos, UTF-8 bytes mapped into the vocabulary, eos, padding.
    """

    def __init__(self, model, tokenizer=None):
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, path: str) -> "ClipScorer":
        """Load a CLIP model (and its tokenizer, when the directory has one) from a local directory.

        Args:
            path (str): a directory written by ``CLIPModel.save_pretrained`` (or a full CLIP download).
        """
        from transformers import AutoTokenizer, CLIPModel

        model = CLIPModel.from_pretrained(path)
        # only a directory with vocabulary files has a tokenizer (AutoTokenizer may otherwise build an empty one)
        if any(os.path.isfile(os.path.join(path, f)) for f in ("tokenizer.json", "vocab.json")):
            return cls(model, AutoTokenizer.from_pretrained(path))
        log.warning("%s: no CLIP tokenizer files; using the byte tokenizer", path)
        return cls(model, None)

    @classmethod
    def load(cls, path: str | None) -> "ClipScorer | None":
        """:meth:`from_pretrained`, or None (CLIP metrics unavailable) when ``path`` is None or holds no weights."""
        if not path:
            return None
        if not os.path.isfile(os.path.join(path, "config.json")):
            log.warning("%s: no CLIP weights there; CLIP metrics are reported as null", path)
            return None
        return cls.from_pretrained(path)

    def _tokens(self, text: str) -> dict:
        cfg = self.model.config.text_config
        if self.tokenizer is not None:
            return dict(self.tokenizer([text], padding=True, truncation=True, return_tensors="pt"))
        n, vocab = cfg.max_position_embeddings, cfg.vocab_size
        special = {cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id}
        free = [i for i in range(vocab) if i not in special]
        ids = [cfg.bos_token_id] + [free[b % len(free)] for b in text.encode("utf-8")][: n - 2] + [cfg.eos_token_id]
        mask = [1] * len(ids) + [0] * (n - len(ids))
        ids = ids + [cfg.pad_token_id] * (n - len(ids))
        return {"input_ids": torch.tensor([ids]), "attention_mask": torch.tensor([mask])}

    @torch.no_grad()
    def image_embeddings(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (T, D) unit-norm image embeddings (bicubic resize to the model's size)."""
        size = self.model.config.vision_config.image_size
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False,
                                            antialias=True).clamp(0, 1)
        x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        e = self.model.get_image_features(pixel_values=x)
        e = getattr(e, "pooler_output", e)
        return torch.nn.functional.normalize(e.float(), dim=-1)

    @torch.no_grad()
    def text_embedding(self, text: str) -> torch.Tensor:
        """A prompt -> (D,) unit-norm text embedding."""
        e = self.model.get_text_features(**self._tokens(text))
        e = getattr(e, "pooler_output", e)
        return torch.nn.functional.normalize(e.float(), dim=-1)[0]


def clip_t(scorer: ClipScorer | None, frames: np.ndarray, prompt: str | None) -> float | None:
    """CLIP-T: mean cosine similarity of the frames' CLIP image embeddings with the prompt's (None without CLIP).

    Args:
        scorer (ClipScorer | None): the CLIP model; None = unavailable.
        frames (np.ndarray): (T, H, W, 3) uint8.
        prompt (str | None): the text; None or "" = unavailable.
    """
    if scorer is None or not prompt:
        return None
    return float((scorer.image_embeddings(frames) @ scorer.text_embedding(prompt)).mean())


def clip_i(scorer: ClipScorer | None, frames: np.ndarray) -> float | None:
    """CLIP-I: mean cosine similarity of consecutive frames' CLIP image embeddings (None without CLIP or < 2 frames).

    Args:
        scorer (ClipScorer | None): the CLIP model; None = unavailable.
        frames (np.ndarray): (T, H, W, 3) uint8.
    """
    if scorer is None or len(frames) < 2:
        return None
    e = scorer.image_embeddings(frames)
    return float((e[1:] * e[:-1]).sum(-1).mean())
