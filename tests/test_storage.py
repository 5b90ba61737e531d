import numpy as np
import pytest

from genprop import storage
from tests.conftest import upload_tree


def test_write_bytes_is_atomic_and_reads_back(tmp_path):
    url = str(tmp_path / "a" / "b.bin")
    storage.write_bytes(url, b"hello")
    assert storage.read_bytes(url) == b"hello"
    assert storage.read_bytes("file://" + url) == b"hello"
    # No temporary files are left beside the target.
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.bin"]
    # The file has a new file's mode (0666 less the umask), not the temporary file's 0600.
    import os

    umask = os.umask(0o022)
    try:
        storage.write_bytes(url, b"again")
        storage.put_file(url, str(tmp_path / "a" / "c.bin"))
        assert [os.stat(tmp_path / "a" / n).st_mode & 0o777 for n in ("b.bin", "c.bin")] == [0o644, 0o644]
    finally:
        os.umask(umask)


def test_s3_round_trip_and_local_copy(s3_bucket, tmp_path):
    url = storage.join(s3_bucket, "dir", "x.bin")
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    storage.write_bytes(url, data)
    assert storage.exists(url)
    assert storage.listdir(storage.join(s3_bucket, "dir")) == ["x.bin"]
    with storage.local_copy(url) as path:
        assert open(path, "rb").read() == data
    (tmp_path / "t" / "u").mkdir(parents=True)
    (tmp_path / "t" / "u" / "f.txt").write_text("z")
    upload_tree(str(tmp_path / "t"), storage.join(s3_bucket, "tree"))
    assert storage.read_text(storage.join(s3_bucket, "tree", "u", "f.txt")) == "z"


def test_local_copy_of_missing_remote_raises(s3_bucket):
    with pytest.raises(FileNotFoundError):
        with storage.local_copy(storage.join(s3_bucket, "nope.mp4")):
            pass


def test_an_unreachable_object_store_is_one_line_naming_url_endpoint_and_what_to_set(monkeypatch, capsys, tmp_path):
    import socket

    from jobs.cli import main
    from genprop.errors import StorageError

    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("GENPROP_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's retries only make the test slower
    assert main(["inspect", "s3://nowhere/davis"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("genprop inspect: s3://nowhere/davis: cannot use the object store at "
                                              f"{endpoint} (EndpointConnectionError")
    assert "set AWS_ENDPOINT_URL (or GENPROP_S3_ENDPOINT_URL)" in err and "AWS_ACCESS_KEY_ID" in err
    with pytest.raises(StorageError, match="s3://nowhere/x.bin: cannot use the object store"):
        storage.write_bytes("s3://nowhere/x.bin", b"data")
    # local files keep their own errors
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(str(tmp_path / "missing.bin"))
