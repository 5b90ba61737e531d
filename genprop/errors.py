"""Typed errors for bad input. Every error names the URL (file or row) and the reason.

Batch readers catch :class:`DataError`, record ``(id, reason)`` and go on; anything else is a bug.
"""

from __future__ import annotations


class GenPropError(Exception):
    """Base class of every error genprop raises on purpose."""


class DataError(GenPropError):
    """Bad input data: a file that cannot be read, or that disagrees with its neighbours.

    Args:
        url (str): the file, directory or row the problem is in.
        reason (str): what is wrong, in words a user can act on.
    """

    def __init__(self, url: str, reason: str):
        self.url = str(url)
        self.reason = reason
        super().__init__(f"{self.url}: {reason}")

    def __reduce__(self):
        # Rebuild from (url, reason): exceptions cross process boundaries (Ray tasks, spawned decoders) pickled,
        # and the default reduce would call __init__ with the formatted message alone.
        return type(self), (self.url, self.reason)


class StorageError(DataError):
    """Object storage that cannot be reached or used: a wrong or missing endpoint, missing credentials, no access."""


class VideoDecodeError(DataError):
    """A video that is corrupt, truncated, empty or not a video at all."""


class DecodeTimeoutError(VideoDecodeError):
    """Decoding did not finish within its timeout; the decoding process was killed."""


class ImageReadError(DataError):
    """An image (frame JPEG, mask PNG) that cannot be read."""


class AnnotationError(DataError):
    """Annotations that are missing, malformed, or whose size disagrees with the frames."""


class UnknownLayoutError(DataError):
    """A dataset root whose layout is none of YouTube-VOS, DAVIS or SA-V."""


class CheckpointError(GenPropError, ValueError):
    """A checkpoint that cannot be loaded (missing file or tensor, wrong shape, the other backbone)."""
