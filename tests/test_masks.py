import numpy as np
import pytest
from PIL import Image

from genprop import masks
from genprop.errors import AnnotationError, ImageReadError


def _ids(h=24, w=32):
    ids = np.zeros((h, w), np.uint8)
    ids[2:10, 3:12] = 1
    ids[12:20, 15:30] = 7
    return ids


def test_palette_png_round_trip(tmp_path):
    url = str(tmp_path / "a.png")
    masks.write_id_map(url, _ids())
    assert Image.open(url).mode == "P"
    np.testing.assert_array_equal(masks.read_id_map(url, expected_size=(24, 32)), _ids())


def test_binary_png_is_object_one(tmp_path):
    url = str(tmp_path / "b.png")
    masks.write_binary_png(url, _ids() == 7)
    ids = masks.read_id_map(url)
    assert set(np.unique(ids).tolist()) == {0, 1}
    np.testing.assert_array_equal(ids == 1, _ids() == 7)


def test_annotation_size_mismatch_names_the_file(tmp_path):
    url = str(tmp_path / "c.png")
    masks.write_id_map(url, _ids())
    with pytest.raises(AnnotationError, match="c.png.*24x32.*frame is 48x64"):
        masks.read_id_map(url, expected_size=(48, 64))


def test_unreadable_image_is_typed(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        masks.read_image(str(bad))
    with pytest.raises(ImageReadError, match="missing.png"):
        masks.read_id_map(str(tmp_path / "missing.png"))


def test_rle_round_trip_and_size_check():
    m = _ids() == 1
    rle = masks.rle_encode(m)
    np.testing.assert_array_equal(masks.rle_decode(rle, expected_size=(24, 32)), m)
    with pytest.raises(AnnotationError, match="x.json.*RLE size 24x32 disagrees.*25x32"):
        masks.rle_decode(rle, expected_size=(25, 32), url="x.json")
    with pytest.raises(AnnotationError, match="malformed"):
        masks.rle_decode({"counts": "abc"}, url="y.json")
