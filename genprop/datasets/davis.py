"""DAVIS 2017 reader: ``JPEGImages/<res>/<seq>/``, ``Annotations/<res>/<seq>/``, ``ImageSets/2017/``.

``<res>`` is ``480p`` when present, else ``Full-Resolution``. Sequences are the union of the
``ImageSets/2017/*.txt`` lists, or every frame directory when ``ImageSets`` is missing.
Annotations are palette PNGs (instance ids) or binary 0/255 PNGs (one object, id 1); frames may
have any size. Object ids are those of the first annotated frame: DAVIS's semi-supervised
protocol labels every object there, and no manifest lists them elsewhere.
"""

from __future__ import annotations

from fractions import Fraction

from genprop import storage
from genprop.datasets.image_sequence import open_sequence
from genprop.datasets.record import VideoRecord
from genprop.errors import ImageReadError

SOURCE = "davis"
FPS = Fraction(24)
RESOLUTIONS = ("480p", "Full-Resolution")


class DavisDataset:
    """A DAVIS 2017 root (the directory holding ``JPEGImages/``).

    Args:
        url (str): the root (plain path, ``file://`` or ``s3://``).
        resolution (str | None, default None): ``"480p"`` or ``"Full-Resolution"``; None picks
            ``480p`` when it exists, else ``Full-Resolution``.
    """

    format = SOURCE

    def __init__(self, url: str, resolution: str | None = None):
        self.url = str(url).rstrip("/")
        if resolution is None:
            try:
                present = storage.listdir(storage.join(self.url, "JPEGImages"))
            except FileNotFoundError:
                present = []
            resolution = next((r for r in RESOLUTIONS if r in present), RESOLUTIONS[0])
        self.resolution = resolution

    def videos(self) -> list[str]:
        """Sequence names, sorted: the union of ``ImageSets/2017/*.txt``, else all frame dirs."""
        sets_dir = storage.join(self.url, "ImageSets", "2017")
        try:
            lists = [n for n in storage.listdir(sets_dir) if n.endswith(".txt")]
        except FileNotFoundError:
            lists = []
        if lists:
            names: set[str] = set()
            for n in lists:
                names.update(line.strip() for line in storage.read_text(storage.join(sets_dir, n))
                             .splitlines() if line.strip())
            return sorted(names)
        frames_root = storage.join(self.url, "JPEGImages", self.resolution)
        try:
            return sorted(storage.listdir(frames_root))
        except FileNotFoundError as e:
            raise ImageReadError(frames_root, "directory not found") from e

    def record(self, video_id: str) -> VideoRecord:
        """Open one sequence.

        Args:
            video_id (str): a name from :meth:`videos`.

        Raises:
            ImageReadError: no frames or an unreadable first frame.
            AnnotationError: missing annotations, or a first annotation of the wrong size.
        """
        return open_sequence(
            source=SOURCE, video_id=video_id,
            frames_dir=storage.join(self.url, "JPEGImages", self.resolution, video_id),
            annotations_dir=storage.join(self.url, "Annotations", self.resolution, video_id),
            fps=FPS, object_ids=None)
