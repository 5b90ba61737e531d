"""Substitute decoders for tests/test_video.py, importable by name in the decoding child process.

Each has the decoder signature of :func:`genprop.video_decode.decord_decoder`:
``decoder(path, indices, out, chunk_frames)``.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time


def hang_holding_gil(path, indices, out, chunk_frames):
    """Hang for 10 minutes inside a C call that keeps the GIL (like decord on a bad container).

    ``ctypes.PyDLL`` does not release the GIL around foreign calls, so no other thread of this
    process can run. To prove it, a thread is started first that would create the file named
    by $GENPROP_TEST_GIL_MARKER after 0.2 s; while the GIL is held it never gets to.
    """
    marker = os.environ.get("GENPROP_TEST_GIL_MARKER")
    if marker:
        def touch():
            time.sleep(0.2)
            open(marker, "w").close()

        threading.Thread(target=touch, daemon=True).start()
        time.sleep(0.01)  # let the thread start and enter its sleep
    ctypes.PyDLL(None).sleep(600)


def raise_error(path, indices, out, chunk_frames):
    raise RuntimeError("synthetic decoder failure")


def die(path, indices, out, chunk_frames):
    os._exit(3)
