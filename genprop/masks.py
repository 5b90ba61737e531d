"""Instance masks: palette PNGs (instance ids), binary PNGs (0/255 -> one object) and COCO RLE.

Conventions: an *id map* is a ``(H, W)`` uint8 array, 0 = background, k = object k.
A *binary mask* is a ``(H, W)`` bool array.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from genprop import storage
from genprop.errors import AnnotationError, ImageReadError

# The DAVIS / YouTube-VOS palette: index i -> colour from the bit-interleaving rule of PASCAL VOC.
def _voc_palette(n: int = 256) -> list[int]:
    palette = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


VOC_PALETTE = _voc_palette()


def _open_image(url: str) -> Image.Image:
    try:
        data = storage.read_bytes(url)
    except FileNotFoundError as e:
        raise ImageReadError(url, "file not found") from e
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:  # PIL raises many types for bad bytes
        raise ImageReadError(url, f"not a readable image ({type(e).__name__}: {e})") from e
    return img


def read_image(url: str) -> np.ndarray:
    """Read an RGB image (JPEG/PNG) from any URL as ``(H, W, 3)`` uint8."""
    return np.asarray(_open_image(url).convert("RGB"))


def read_id_map(url: str, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an annotation PNG as an id map.

    Palette PNGs give their indices directly. Grey or RGB PNGs whose only values are 0 and 255
    (binary masks, as some DAVIS exports are) give object 1.

    Args:
        url (str): the PNG.
        expected_size (tuple[int, int] | None, default None): ``(H, W)`` of the matching frame;
            a different size raises :class:`AnnotationError`.
    """
    img = _open_image(url)
    if img.mode == "P":
        ids = np.asarray(img, dtype=np.uint8)
    else:
        grey = np.asarray(img.convert("L"))
        values = np.unique(grey)
        if not set(values.tolist()) <= {0, 255}:
            # Anti-aliased binary masks exist in the wild; threshold at the midpoint.
            if img.mode not in ("L", "1", "RGB", "RGBA", "LA"):
                raise AnnotationError(url, f"unsupported annotation mode {img.mode!r}")
        ids = (grey >= 128).astype(np.uint8)
    if expected_size is not None and tuple(ids.shape) != tuple(expected_size):
        raise AnnotationError(
            url, f"annotation is {ids.shape[0]}x{ids.shape[1]} but its frame is "
            f"{expected_size[0]}x{expected_size[1]}")
    return ids


def encode_png(image: np.ndarray, palette: bool = False) -> bytes:
    """PNG bytes of an RGB ``(H, W, 3)`` image, or of an id map as a palette PNG."""
    if palette:
        img = Image.fromarray(np.asarray(image, dtype=np.uint8), mode="P")
        img.putpalette(VOC_PALETTE)
    else:
        img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_id_map(url: str, ids: np.ndarray) -> None:
    """Write an id map as a palette PNG (atomically)."""
    storage.write_bytes(url, encode_png(ids, palette=True))


def write_binary_png(url: str, mask: np.ndarray) -> None:
    """Write a binary mask as a grey PNG with values 0/255 (atomically)."""
    storage.write_bytes(url, encode_png(np.where(mask, 255, 0).astype(np.uint8)))


def write_image(url: str, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB image; JPEG when the URL ends in .jpg/.jpeg, PNG otherwise (atomically)."""
    buf = io.BytesIO()
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if str(url).lower().endswith((".jpg", ".jpeg")):
        # 4:4:4 chroma: small frames with sharp coloured edges lose ~2x more to 4:2:0.
        img.save(buf, format="JPEG", quality=quality, subsampling=0)
    else:
        img.save(buf, format="PNG")
    storage.write_bytes(url, buf.getvalue())


def rle_decode(rle: dict, expected_size: tuple[int, int] | None = None, url: str = "<rle>") -> np.ndarray:
    """Decode one COCO RLE (``{"size": [h, w], "counts": str|list}``) to a bool mask.

    Args:
        rle (dict): the RLE.
        expected_size (tuple[int, int] | None, default None): ``(H, W)`` of the video; an RLE of
            another size raises :class:`AnnotationError` naming ``url``.
        url (str): where the RLE came from, for error messages.
    """
    from pycocotools import mask as mask_utils

    try:
        size = tuple(int(s) for s in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as e:
        raise AnnotationError(url, f"malformed RLE ({e!r})") from e
    if expected_size is not None and size != tuple(expected_size):
        raise AnnotationError(
            url, f"RLE size {size[0]}x{size[1]} disagrees with the video's "
            f"{expected_size[0]}x{expected_size[1]}")
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects({"size": list(size), "counts": counts}, *size)
    else:
        rle = {"size": list(size), "counts": counts.encode() if isinstance(counts, str) else counts}
    try:
        return mask_utils.decode(rle).astype(bool)
    except Exception as e:
        raise AnnotationError(url, f"undecodable RLE ({e})") from e


def rle_encode(mask: np.ndarray) -> dict:
    """Encode a bool ``(H, W)`` mask as a COCO RLE with string counts (JSON-serialisable)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
