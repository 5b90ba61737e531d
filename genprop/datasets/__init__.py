"""Readers for instance-segmentation video datasets (YouTube-VOS, DAVIS 2017, SA-V).

Every reader takes a root URL (plain path, ``file://``, ``s3://``) and returns
:class:`VideoRecord` objects: picklable metadata with lazy ``frames()`` and ``masks()``.

    ds = open_dataset("s3://bucket/youtube-vos/train")       # layout detected
    for rec in iter_videos(ds.url, on_bad=lambda vid, why: ...):
        clip = rec.frames(range(8))                            # (8, H, W, 3) uint8
        m = rec.masks()                                        # ObjectMasks, (K, T, H, W) bool
"""

from genprop.datasets.davis import DavisDataset
from genprop.datasets.layout import (
    FORMATS,
    Dataset,
    check_record,
    detect_format,
    inspect_dataset,
    iter_videos,
    open_dataset,
)
from genprop.datasets.record import ObjectMasks, VideoRecord, fps_string
from genprop.datasets.sav import SavDataset
from genprop.datasets.youtube_vos import YouTubeVOSDataset

__all__ = [
    "FORMATS", "Dataset", "DavisDataset", "ObjectMasks", "SavDataset", "VideoRecord",
    "YouTubeVOSDataset", "check_record", "detect_format", "fps_string", "inspect_dataset",
    "iter_videos", "open_dataset",
]
