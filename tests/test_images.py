"""Image decoding: colour modes, truncated and corrupt files, the probe and the decoded cache."""
from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashioncomp.data import images as images_module
from fashioncomp.data.images import ImageReadError, build_image_cache, load_image, probe_image
from fashioncomp.io import OutputError


def _noise_jpeg(path: Path, size: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def _truncate(path: Path, out: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


# --- colour modes ---------------------------------------------------------------------------

def test_grayscale_becomes_three_equal_channels(tmp_path):
    Image.new("L", (8, 8), 128).save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png")
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb == 128).all()


def test_bilevel_image(tmp_path):
    img = Image.new("1", (8, 8), 0)
    img.putpixel((2, 3), 1)
    img.save(tmp_path / "b.png")
    rgb = load_image(tmp_path / "b.png")
    assert tuple(rgb[3, 2]) == (255, 255, 255) and tuple(rgb[0, 0]) == (0, 0, 0)


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    grey = np.array([[0, 257 * 100, 65535, 200]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgb = load_image(tmp_path / "g16.png")
    assert rgb[0, :, 0].tolist() == [0, 100, 255, 1]  # 200/65535 is almost black, not grey 200
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_rgba_transparent_pixels_become_white_and_opaque_keep_colour(tmp_path):
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))         # fully transparent red
    img.putpixel((1, 1), (0, 0, 255, 255))                    # opaque blue
    img.putpixel((2, 2), (0, 0, 0, 128))                      # half-transparent black
    img.save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[1, 1]) == (0, 0, 255)
    assert all(abs(int(v) - 127) <= 1 for v in rgb[2, 2])


def test_grey_with_alpha(tmp_path):
    img = Image.new("LA", (4, 4), (0, 0))
    img.putpixel((1, 1), (50, 255))
    img.save(tmp_path / "la.png")
    rgb = load_image(tmp_path / "la.png")
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[1, 1]) == (50, 50, 50)


def _palette_image() -> Image.Image:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    img.putpixel((1, 1), 1)
    return img


def test_palette_without_transparency(tmp_path):
    _palette_image().save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    rgb = load_image(tmp_path / "p.png")
    assert tuple(rgb[0, 0]) == (255, 0, 0) and tuple(rgb[1, 1]) == (0, 0, 255)


def test_palette_with_transparency_uses_white_background(tmp_path):
    _palette_image().save(tmp_path / "pt.png", transparency=0)
    assert "transparency" in Image.open(tmp_path / "pt.png").info
    rgb = load_image(tmp_path / "pt.png")
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[1, 1]) == (0, 0, 255)


def test_palette_gif_with_transparency(tmp_path):
    _palette_image().save(tmp_path / "pt.gif", transparency=0)
    rgb = load_image(tmp_path / "pt.gif")
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[1, 1]) == (0, 0, 255)


def test_cmyk_jpeg_red_stays_red(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    r, g, b = (int(v) for v in load_image(tmp_path / "c.jpg")[8, 8])
    assert r > 240 and g < 15 and b < 15


def test_resize_pads_to_square_with_white(tmp_path):
    Image.new("RGB", (40, 20), (0, 0, 0)).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", size=20)
    assert out.shape == (20, 20, 3)
    assert (out[0] == 255).all() and (out[-1] == 255).all()   # padding rows above and below
    assert (out[10] == 0).all()


# --- damaged files --------------------------------------------------------------------------

def test_truncated_jpeg_warns_and_decodes_what_is_there(tmp_path):
    full = _noise_jpeg(tmp_path / "full.jpg")
    short = _truncate(full, tmp_path / "short.jpg")
    with pytest.warns(UserWarning, match=r"short\.jpg: image file is truncated"):
        part = load_image(short, size=32)
    assert part.shape == (32, 32, 3)
    whole = load_image(full, size=32)
    np.testing.assert_array_equal(part[:4], whole[:4])  # the top rows decoded before the cut


def test_truncated_png_warns(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    short = _truncate(tmp_path / "full.png", tmp_path / "short.png", keep=0.6)
    with pytest.warns(UserWarning, match="truncated"):
        assert load_image(short).shape == (64, 64, 3)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_undecodable_file_raises_naming_it(tmp_path, content):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    with pytest.raises(ImageReadError, match=r"bad\.jpg: cannot decode image"):
        load_image(bad)


def test_jpeg_with_garbage_after_header_raises(tmp_path):
    full = _noise_jpeg(tmp_path / "full.jpg").read_bytes()
    header_end = full.index(b"\xff\xda") + 12  # keep the headers up to the start of scan
    garbage = bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8))
    (tmp_path / "garbled.jpg").write_bytes(full[:header_end] + garbage.replace(b"\xff", b"\x00"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = load_image(tmp_path / "garbled.jpg", size=16)
        except ImageReadError as exc:
            assert "garbled.jpg" in str(exc)
        else:  # libjpeg may decode garbage as noise; it must then still be a valid image
            assert out.shape == (16, 16, 3)


def test_missing_file_raises_image_read_error(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_decompression_bomb_is_a_clear_error(tmp_path, monkeypatch):
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64*64 > 2 * 100: Pillow refuses to open
    with pytest.raises(ImageReadError, match="big.png"):
        load_image(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="big.png"):
        probe_image(tmp_path / "big.png")


# --- probe (the cheap check `init` runs on every train image) --------------------------------

def test_probe_accepts_good_images_and_flags_truncated_ones(tmp_path):
    full = _noise_jpeg(tmp_path / "ok.jpg")
    assert probe_image(full) is None
    Image.new("RGBA", (8, 8)).save(tmp_path / "ok.png")
    assert probe_image(tmp_path / "ok.png") is None
    assert "truncated" in probe_image(_truncate(full, tmp_path / "short.jpg"))
    damaged_png = _truncate(tmp_path / "ok.png", tmp_path / "short.png", keep=0.8)
    assert "damaged" in probe_image(damaged_png)


def test_probe_accepts_padding_after_the_jpeg_end_marker(tmp_path):
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(_noise_jpeg(tmp_path / "ok.jpg").read_bytes() + b"\0" * 16)
    assert probe_image(padded) is None


def test_probe_rejects_non_images(tmp_path):
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(ImageReadError, match=r"text\.jpg: not a readable image"):
        probe_image(tmp_path / "text.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg"):
        probe_image(tmp_path / "empty.jpg")


# --- decoded-image cache --------------------------------------------------------------------

def _image_dir(tmp_path: Path, n: int = 3) -> tuple[Path, list[str]]:
    root = tmp_path / "imgs"
    root.mkdir()
    names = []
    for i in range(n):
        _noise_jpeg(root / f"{i}.jpg", size=24, seed=i)
        names.append(f"{i}.jpg")
    return root, names


def test_cache_matches_load_image_and_is_reused(tmp_path):
    root, names = _image_dir(tmp_path)
    cache, ok = build_image_cache(root, names, 16, tmp_path / "cache", progress=False)
    assert cache.shape == (3, 16, 16, 3) and ok.all()
    for i, name in enumerate(names):
        np.testing.assert_array_equal(cache[i], load_image(root / name, 16))
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 2 and not any(name.endswith(".tmp") for name in files)
    again, _ = build_image_cache(root, names, 16, tmp_path / "cache", progress=False)
    assert again.filename == cache.filename


def test_cache_raise_names_row_and_file(tmp_path):
    root, names = _image_dir(tmp_path)
    (root / "1.jpg").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match=r"row 2 of the image list: .*1\.jpg: cannot decode") as info:
        build_image_cache(root, names, 16, tmp_path / "cache", progress=False)
    assert "cannot write" not in str(info.value)  # the decode error, not a misleading output error
    assert not any((tmp_path / "cache").iterdir())  # no half-built cache left behind


def test_cache_warn_marks_missing_and_unreadable_rows(tmp_path):
    root, names = _image_dir(tmp_path, n=4)
    (root / "1.jpg").unlink()
    (root / "2.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning) as record:
        cache, ok = build_image_cache(root, names, 16, tmp_path / "cache", on_error="warn", progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert "row 2 of the image list" in messages and "1.jpg: image file not found" in messages
    assert "row 3 of the image list" in messages and "2.jpg: cannot decode" in messages
    assert ok.tolist() == [True, False, False, True]
    assert (cache[1] == 0).all() and (cache[2] == 0).all() and cache[0].any()


def test_cache_disk_full_is_an_output_error(tmp_path, monkeypatch):
    root, names = _image_dir(tmp_path)

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(images_module.os, "posix_fallocate", full, raising=False)
    with pytest.raises(OutputError, match="the disk is full"):
        build_image_cache(root, names, 16, tmp_path / "cache", progress=False)
    assert not any((tmp_path / "cache").iterdir())
