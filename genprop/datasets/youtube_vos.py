"""YouTube-VOS (2018/2019) split reader: ``JPEGImages/<vid>/``, ``Annotations/<vid>/``, ``meta.json``.

Frame files are named by their original frame number (every 5th frame of the 30 fps source in
the real dataset, hence a default of 6 fps). A record's frames are the JPEGs in sorted order,
and ``annotated_frames`` are positions in that order, not original frame numbers. A per-video
``"fps"`` entry in ``meta.json`` (written by genprop's procedural world, e.g. ``"12"`` or ``"30000/1001"``) wins.

Object ids come from ``meta.json`` and are checked against each annotation as it is read. Some
valid splits ship without ``meta.json``; then (and for a video it does not list) the ids of
the first annotation are used, and ids appearing only in later annotations are ignored.

A split with an ``Effects/<vid>/<object id>/`` tree (genprop's procedural world writes one: each object's
shadow and reflection) gives effect masks too (``VideoRecord.effects``); real splits have none.
"""

from __future__ import annotations

import json
from fractions import Fraction

from genprop import storage
from genprop.datasets.image_sequence import open_sequence
from genprop.datasets.record import VideoRecord, parse_fps
from genprop.errors import AnnotationError, ImageReadError

SOURCE = "youtube-vos"
DEFAULT_FPS = Fraction(6)  # every 5th frame of 30 fps video


class YouTubeVOSDataset:
    """One YouTube-VOS split (the directory holding ``JPEGImages/``).

    Args:
        url (str): the split's root (plain path, ``file://`` or ``s3://``).
    """

    format = SOURCE

    def __init__(self, url: str):
        self.url = str(url).rstrip("/")
        self._meta: dict | None = None
        self._meta_read = False
        self._has_effects: bool | None = None

    @property
    def meta(self) -> dict | None:
        """The ``videos`` mapping of ``meta.json``, or None when the file is absent (read once)."""
        if not self._meta_read:
            url = storage.join(self.url, "meta.json")
            try:
                text = storage.read_text(url)
            except FileNotFoundError:
                text = None
            if text is not None:
                try:
                    videos = json.loads(text)["videos"]
                    if not isinstance(videos, dict):
                        raise TypeError("'videos' is not an object")
                except (ValueError, KeyError, TypeError) as e:
                    raise AnnotationError(url, f"malformed meta.json ({e})") from e
                self._meta = videos
            self._meta_read = True
        return self._meta

    def videos(self) -> list[str]:
        """Ids of the videos (directories under ``JPEGImages/``), sorted."""
        try:
            return sorted(storage.listdir(storage.join(self.url, "JPEGImages")))
        except FileNotFoundError as e:
            raise ImageReadError(storage.join(self.url, "JPEGImages"), "directory not found") from e

    def record(self, video_id: str) -> VideoRecord:
        """Open one video.

        Args:
            video_id (str): a name from :meth:`videos`.

        Raises:
            ImageReadError: no frames or an unreadable first frame.
            AnnotationError: missing annotations, or a malformed ``meta.json`` entry.
        """
        meta_url = storage.join(self.url, "meta.json")
        meta = self.meta
        entry = None if meta is None else meta.get(video_id)
        # A video missing from meta.json is read like one from a split without meta.json
        # (ids from its first annotation) rather than rejected: the frames and masks are there.
        fps = DEFAULT_FPS
        object_ids = None
        if entry is not None:
            try:
                object_ids = sorted(int(k) for k in entry.get("objects", {}))
            except (ValueError, TypeError, AttributeError) as e:
                raise AnnotationError(meta_url, f"video {video_id!r}: bad object ids ({e})") from e
            if any(i <= 0 for i in object_ids):
                raise AnnotationError(meta_url, f"video {video_id!r}: object ids must be > 0")
            if "fps" in entry:
                fps = parse_fps(entry["fps"], meta_url)
        if self._has_effects is None:  # one check per dataset: only genprop's procedural world writes them
            self._has_effects = storage.isdir(storage.join(self.url, "Effects"))
        return open_sequence(
            source=SOURCE, video_id=video_id,
            frames_dir=storage.join(self.url, "JPEGImages", video_id),
            annotations_dir=storage.join(self.url, "Annotations", video_id),
            fps=fps, object_ids=object_ids,
            effects_dir=storage.join(self.url, "Effects", video_id) if self._has_effects else None)

    def categories(self, video_id: str) -> dict[int, str]:
        """Object id -> category name from ``meta.json`` (empty without it)."""
        entry = (self.meta or {}).get(video_id) or {}
        return {int(k): str(v.get("category", "")) for k, v in entry.get("objects", {}).items()}
