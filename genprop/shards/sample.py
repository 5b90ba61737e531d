"""One training sample as WebDataset members: stable dot-free key, fp16 latents, packed-bit masks, meta JSON.

Members (``<key>.<name>``; the name never holds the key's separator problem: keys have no dot):

- ``sce_latents.npy``, ``target_latents.npy``: (T_lat, C, h, w) fp16, the SCE input and the target;
- ``cond_frame.png``: (H, W, 3) G's first frame; ``cond_latents.npy``: (C, h, w) fp16, its latents;
- ``cond_<name>.npy``: each tensor of ``backbone.encode_condition`` (batch dim dropped), fp16, or fp32 when it
  has at most :data:`SMALL_TENSOR` elements (SVD's ``added_time_ids`` must not round);
- ``mask.npy``: (T, H, ceil(W/8)) uint8, the loss mask at video resolution, bits packed along W
  (:func:`unpack_mask`); ``latent_mask.npy``: (T_lat, 1, h, w) fp16; ``mpd_target.npy``: (T, h, w) fp16;
- ``task.cls``: the task id as text (what training reads); ``prompt.txt``; ``meta.json`` (its ``task`` is the
  augmentation's name, ``genprop.tasks.Task.augmentation``; shards of the older format spell colour fill
  ``color_fill`` there and in their keys, which nothing reads back).
"""

from __future__ import annotations

import hashlib
import io
import json
import re

import numpy as np
from PIL import Image

SMALL_TENSOR = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def sample_key(source: str, video_id: str, object_id: int, start: int, task: str) -> str:
    """A stable key without dots: ``<source>_<video>_o<object>_f<start>_<task>``.

    Characters other than letters, digits, ``_`` and ``-`` become ``-`` (a dot would split the sample when
    WebDataset reads it back); when that changes the id, 8 hex digits of the original are appended, so two
    ids that differ only in such characters keep different keys.

    Args:
        source (str): dataset layout (``youtube-vos``, ``davis``, ``sav``).
        video_id (str): the id inside the dataset.
        object_id (int): the object the augmentation used.
        start (int): the clip's first source frame.
        task (str): the augmentation's name (``Task.augmentation``).
    """
    raw = f"{source}_{video_id}"
    safe = _UNSAFE.sub("-", raw)
    if safe != raw:
        safe += "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{safe}_o{int(object_id)}_f{int(start):06d}_{task}"


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of an (H, W, 3) uint8 image (PIL writes no timestamp: same pixels, same bytes)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """(T, H, W) bool -> (T, H, ceil(W/8)) uint8."""
    return np.packbits(mask.astype(bool), axis=-1)


def unpack_mask(packed: np.ndarray, width: int) -> np.ndarray:
    """Inverse of :func:`pack_mask`: (T, H, ceil(W/8)) uint8 -> (T, H, W) bool.

    Args:
        packed (np.ndarray): the ``mask.npy`` member.
        width (int): W (``meta["size"][1]``).
    """
    return np.unpackbits(packed, axis=-1, count=int(width)).astype(bool)


def tensor_npy(array: np.ndarray) -> bytes:
    """fp16 ``.npy`` for float arrays (fp32 for small ones), the array's own dtype otherwise."""
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32 if array.size <= SMALL_TENSOR else np.float16)
    return npy_bytes(array)


def encode_members(*, sce_latents: np.ndarray, target_latents: np.ndarray, cond_frame: np.ndarray,
                   cond_latents: np.ndarray, condition: dict[str, np.ndarray], mask: np.ndarray,
                   latent_mask: np.ndarray, mpd_target: np.ndarray, task_id: int, prompt: str,
                   meta: dict) -> dict[str, bytes]:
    """The members of one sample (names without the key), each already encoded.

    Args:
        sce_latents, target_latents (np.ndarray): (T_lat, C, h, w) float.
        cond_frame (np.ndarray): (H, W, 3) uint8.
        cond_latents (np.ndarray): (C, h, w) float.
        condition (dict[str, np.ndarray]): ``encode_condition``'s tensors without the batch dim.
        mask (np.ndarray): (T, H, W) bool.
        latent_mask (np.ndarray): (T_lat, 1, h, w) float; mpd_target (np.ndarray): (T, h, w) float.
        task_id (int): 1, 2 or 3.
        prompt (str): G's prompt.
        meta (dict): JSON-ready metadata (written with sorted keys).
    """
    members = {
        "sce_latents.npy": npy_bytes(sce_latents.astype(np.float16)),
        "target_latents.npy": npy_bytes(target_latents.astype(np.float16)),
        "cond_frame.png": png_bytes(cond_frame),
        "cond_latents.npy": npy_bytes(cond_latents.astype(np.float16)),
        "mask.npy": npy_bytes(pack_mask(mask)),
        "latent_mask.npy": npy_bytes(latent_mask.astype(np.float16)),
        "mpd_target.npy": npy_bytes(mpd_target.astype(np.float16)),
        "task.cls": str(int(task_id)).encode(),
        "prompt.txt": prompt.encode("utf-8"),
        "meta.json": json.dumps(meta, sort_keys=True, separators=(",", ":")).encode(),
    }
    for name, value in condition.items():
        if "." in name:
            raise ValueError(f"condition name {name!r} has a dot (it would split the sample)")
        members[f"cond_{name}.npy"] = tensor_npy(value)
    return members


def decode_sample(sample: dict) -> dict:
    """Arrays of one sample as read back by ``webdataset`` without decoders (member name -> bytes).

    Args:
        sample (dict): ``{"__key__": ..., "sce_latents.npy": bytes, ...}``.

    Returns:
        dict: ``key``, ``meta``, ``task_id``, ``prompt``, ``mask`` (T, H, W) bool, ``cond_frame`` (H, W, 3) uint8,
        ``condition`` {name: array}, and every other ``.npy`` member by its name without ``.npy``.
    """
    meta = json.loads(sample["meta.json"])
    out = {"key": sample["__key__"], "meta": meta, "task_id": int(sample["task.cls"]),
           "prompt": sample["prompt.txt"].decode("utf-8"), "condition": {}}
    for name, value in sample.items():
        if not name.endswith(".npy"):
            continue
        array = np.load(io.BytesIO(value), allow_pickle=False)
        stem = name[:-4]
        if stem == "mask":
            out["mask"] = unpack_mask(array, meta["size"][1])
        elif stem.startswith("cond_") and stem != "cond_latents":
            out["condition"][stem[5:]] = array
        else:
            out[stem] = array
    out["cond_frame"] = np.asarray(Image.open(io.BytesIO(sample["cond_frame.png"])).convert("RGB"))
    return out
