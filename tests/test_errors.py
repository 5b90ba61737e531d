import pickle

import pytest

from genprop import storage
from genprop.errors import (AnnotationError, DataError, DecodeTimeoutError, ImageReadError, UnknownLayoutError,
                            VideoDecodeError)


@pytest.mark.parametrize("cls", [DataError, VideoDecodeError, DecodeTimeoutError, ImageReadError, AnnotationError,
                                 UnknownLayoutError])
def test_data_errors_survive_pickling(cls):
    # Ray ships a worker's exception to the driver pickled; it must arrive whole, type and fields included.
    err = pickle.loads(pickle.dumps(cls("s3://b/v.mp4", "truncated")))
    assert type(err) is cls and (err.url, err.reason) == ("s3://b/v.mp4", "truncated")
    assert str(err) == "s3://b/v.mp4: truncated"


def test_absolute_resolves_relative_local_paths_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.absolute("out/x") == str(tmp_path / "out" / "x")
    assert storage.absolute("s3://bucket/x") == "s3://bucket/x"
    assert storage.absolute("file:///a/b") == "file:///a/b"
    assert storage.absolute("") == ""
