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
