"""imgcls.io: the one place images are opened (probe, load_rgb, load_rgba, thumbnail, to_rgb)."""
from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ODD_FILES, make_image, make_odd_file
from imgcls import io as imgio


def test_probe_good_png(tmp_path):
    p = make_image(tmp_path / "a.png", size=(48, 40))
    rec = imgio.probe(p)
    assert rec == {"width": 48, "height": 40, "mode": "RGB", "format": "PNG", "bytes": p.stat().st_size,
                   "mtime": p.stat().st_mtime_ns, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "error": ""}


@pytest.mark.parametrize("kind", sorted(ODD_FILES))
def test_probe_never_raises_and_reports(kind, tmp_path):
    p = make_odd_file(kind, tmp_path)
    rec = imgio.probe(p, max_pixels=10_000)
    expected = ODD_FILES[kind][1]
    if expected is None:
        assert rec["error"] == ""
        assert rec["width"] and rec["height"]
    else:
        assert expected in rec["error"]
    assert rec["bytes"] == p.stat().st_size


@pytest.mark.parametrize("kind", [k for k, (_, e) in ODD_FILES.items() if e])
def test_load_rgb_raises_image_read_error(kind, tmp_path):
    p = make_odd_file(kind, tmp_path)
    with pytest.raises(imgio.ImageReadError) as e:
        imgio.load_rgb(p, max_pixels=10_000)
    assert e.value.path == str(p)
    assert ODD_FILES[kind][1].split()[0] in e.value.reason


def test_cmyk_converted_to_rgb(tmp_path):
    p = make_odd_file("cmyk_jpeg", tmp_path)
    assert imgio.probe(p)["mode"] == "CMYK"
    im = imgio.load_rgb(p)
    assert im.mode == "RGB"
    assert np.abs(np.asarray(im, int) - (255, 0, 0)).max() <= 3   # pure red survives the conversion


def test_16bit_png_scaled_not_clipped(tmp_path):
    p = make_odd_file("png_16bit", tmp_path)
    assert imgio.probe(p)["mode"].startswith("I")
    arr = np.asarray(imgio.load_rgb(p))
    assert arr.shape == (30, 40, 3) and (arr == 128).all()     # 32896 / 257; PIL's convert would give 255


def test_palette_alpha_flattened_on_background(tmp_path):
    p = make_odd_file("palette_alpha_png", tmp_path)
    arr = np.asarray(imgio.load_rgb(p))
    assert (arr[:, :20] == 255).all()                           # transparent -> white
    assert (arr[:, 20:] == (0, 0, 255)).all()
    grey = np.asarray(imgio.load_rgb(p, background=(10, 20, 30)))
    assert (grey[:, :20] == (10, 20, 30)).all()
    rgba = np.asarray(imgio.load_rgba(p))
    assert rgba.shape == (30, 40, 4) and (rgba[:, :20, 3] == 0).all() and (rgba[:, 20:, 3] == 255).all()


def _low_depth_grey_png(path, depth: int, values: list[int], key: int) -> None:
    """A one-row grey PNG at 2 or 4 bits with a tRNS transparent value (PIL writes grey at 1, 8 and 16 bits only)."""
    import struct
    import zlib
    bits = "".join(format(v, f"0{depth}b") for v in values)
    bits += "0" * (-len(bits) % 8)
    row = b"\0" + int(bits, 2).to_bytes(len(bits) // 8, "big")
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", len(values), 1, depth, 0, 0, 0, 0))
                     + chunk(b"tRNS", struct.pack(">H", key)) + chunk(b"IDAT", zlib.compress(row)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", ["L", "I;16", "1", "L;2", "RGB"])
def test_a_png_transparent_colour_key_is_flattened_on_background(kind, tmp_path):
    """A grey (or RGB) PNG names its transparency as one value (tRNS, PIL's info['transparency']): those pixels are
    the background, as an alpha channel's would be; they read as their stored grey before."""
    p = tmp_path / "key.png"
    if kind == "L;2":                           # key 3 of 2 bits: the pixel PIL decodes as 255
        _low_depth_grey_png(p, 2, [3, 1, 2, 3], key=3)
        grey = [None, 85, 170, None]
    elif kind == "RGB":
        Image.fromarray(np.array([[[9, 9, 9], [40, 50, 60], [9, 9, 8], [9, 9, 9]]], np.uint8)).save(
            p, transparency=(9, 9, 9))
        grey = None
    else:
        arr = {"L": np.array([[7, 100, 200, 7]], np.uint8), "I;16": np.array([[7, 25700, 65535, 7]], np.uint16),
               "1": np.array([[0, 1, 1, 0]], bool)}[kind]
        Image.fromarray(arr).save(p, transparency=0 if kind == "1" else 7)
        grey = [None, {"L": 100, "I;16": 100, "1": 255}[kind], {"L": 200, "I;16": 255, "1": 255}[kind], None]
    with Image.open(p) as raw:
        assert "transparency" in raw.info and raw.mode == kind.split(";2")[0]
    out = np.asarray(imgio.load_rgb(p, background=(255, 0, 0)))
    assert out[0, 0].tolist() == out[0, 3].tolist() == [255, 0, 0]            # the key -> the background
    alpha = np.asarray(imgio.load_rgba(p))[0, :, 3]
    assert alpha.tolist() == [0, 255, 255, 0]
    if grey is None:
        assert out[0, 1].tolist() == [40, 50, 60] and out[0, 2].tolist() == [9, 9, 8]   # one channel off: opaque
        return
    assert [out[0, i, 0] for i in (1, 2)] == grey[1:3] and (out[0, 1:3, 1:] == out[0, 1:3, :1]).all()
    assert imgio.load_rgb_or_grey(p, background=(255, 0, 0)).mode == "RGB"      # a colour behind: RGB, as load_rgb
    kept = imgio.load_rgb_or_grey(p, background=(30, 30, 30))
    assert kept.mode == "L" and np.asarray(kept).tolist() == [[30, *grey[1:3], 30]]


def test_exif_rotation_swaps_size_and_rotates_pixels(tmp_path):
    p = make_odd_file("exif_rotated_jpeg", tmp_path)
    with Image.open(p) as raw:
        assert raw.size == (60, 30)                             # stored landscape
    rec = imgio.probe(p)
    assert (rec["width"], rec["height"]) == (30, 60)            # shown portrait
    arr = np.asarray(imgio.load_rgb(p), int)
    assert arr.shape == (60, 30, 3)
    # orientation 6 = rotate 90 degrees clockwise: the stored left third (red) becomes the top third
    assert np.abs(arr[:18] - (255, 0, 0)).max() < 30
    assert np.abs(arr[24:] - 255).max() < 30
    assert imgio.load_rgba(p).size == (30, 60)


def test_an_exif_rotated_tiff_or_webp_has_the_size_load_rgb_gives(tmp_path):
    """Pillow applies a TIFF's orientation tag itself (the opened image's size is already the turned one, load()
    transposes the pixels): probe turned that size once more, so the manifest said 60x30 for an image every step
    reads as 30x60 (eda's size table, train's aspect figures). probe's size is load_rgb's, for every format."""
    arr = np.zeros((30, 60, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    for ext in ("tiff", "webp", "jpg", "png"):
        p = tmp_path / f"r.{ext}"
        Image.fromarray(arr).save(p, exif=exif.tobytes())
        rec = imgio.probe(p)
        im = imgio.load_rgb(p)
        assert (rec["width"], rec["height"]) == im.size == (30, 60), ext
        assert np.asarray(im)[:15, :, 0].min() > 200, ext          # red on top, turned once


def test_header_size_is_load_rgbs_size_without_decoding(tmp_path):
    """header_size: the public header read (predict's check that test images are squares reached into
    _open_checked): load_rgb's size, EXIF turn applied, and the loaders' ImageReadError for a bad file."""
    p = make_odd_file("exif_rotated_jpeg", tmp_path)
    assert imgio.header_size(p) == imgio.load_rgb(p).size == (30, 60)
    assert imgio.header_size(make_image(tmp_path / "a.png", size=(48, 40)), None) == (48, 40)
    with pytest.raises(imgio.ImageReadError, match="pixels"):
        imgio.header_size(tmp_path / "a.png", max_pixels=100)
    (tmp_path / "b.png").write_bytes(b"not an image")
    with pytest.raises(imgio.ImageReadError):
        imgio.header_size(tmp_path / "b.png")


def test_a_pngs_exif_after_its_pixels_gives_the_size_load_rgb_gives(tmp_path):
    """A PNG may carry its eXIf chunk after the image data (tools that append metadata): PIL reads it there when
    it loads the pixels, so load_rgb turned the image, while probe, which skips PIL's getexif for PNGs (it decodes
    every pixel), recorded it upright: the manifest said 60x30 for an image every step reads as 30x60."""
    import io
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def exif_of(orientation: int) -> bytes:
        exif = Image.Exif()
        exif[0x0112] = orientation
        return exif.tobytes()

    buf = io.BytesIO()
    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    end = png.rfind(b"IEND") - 4
    p = tmp_path / "late.png"
    p.write_bytes(png[:end] + chunk(b"eXIf", exif_of(6)) + png[end:])
    rec = imgio.probe(p)
    assert rec["error"] == "" and (rec["width"], rec["height"]) == imgio.load_rgb(p).size == (30, 60)
    start = png.find(b"IDAT") - 4       # an upright eXIf before the pixels, a turning one after: PIL keeps the later
    both = tmp_path / "both.png"
    both.write_bytes(png[:start] + chunk(b"eXIf", exif_of(1)) + png[start:end] + chunk(b"eXIf", exif_of(6))
                     + png[end:])
    rec = imgio.probe(both)
    assert (rec["width"], rec["height"]) == imgio.load_rgb(both).size


def test_a_pngs_orientation_text_after_its_pixels_gives_the_size_load_rgb_gives(tmp_path):
    """An XMP packet's tiff:Orientation or ImageMagick's "Raw profile type exif" text in a chunk after the image
    data (a tool that appends metadata): PIL reads it as it loads the pixels, so load_rgb turned the image, while
    probe looked for a late eXIf chunk only: the manifest said 60x30 for an image every step reads as 30x60."""
    import io
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    exif = Image.Exif()
    exif[0x0112] = 6
    raw = b"Exif\x00\x00" + exif.tobytes()
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
           b'tiff:Orientation="6"/></x:xmpmeta>')
    text = f"\nexif\n{len(raw):8d}\n{raw.hex()}".encode()
    late = {"xmp": chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp),
            "text": chunk(b"tEXt", b"Raw profile type exif\x00" + text),
            "ztext": chunk(b"zTXt", b"Raw profile type exif\x00\x00" + zlib.compress(text)),
            "other": chunk(b"tEXt", b"Comment\x00tiff:Orientation=\"6\"")}     # no orientation: upright
    buf = io.BytesIO()
    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    end = png.rfind(b"IEND") - 4
    for name, extra in late.items():
        p = tmp_path / f"{name}.png"
        p.write_bytes(png[:end] + extra + png[end:])
        rec = imgio.probe(p)
        size = (60, 30) if name == "other" else (30, 60)
        assert rec["error"] == "" and (rec["width"], rec["height"]) == imgio.load_rgb(p).size == size, name


def test_a_pngs_late_orientation_text_beside_an_earlier_exif_or_other_text_gives_load_rgb_s_size(tmp_path):
    """An XMP packet (exiftool writes a PNG's XMP after the pixels by default) or a "Raw profile type exif" text
    after the image data: PIL reads it when it loads the pixels, so load_rgb turned the image, while probe looked
    after the pixels for an eXIf chunk alone and recorded 60x30 for an image every step reads as 30x60. A text of
    another key there (ImageMagick's date:modify) turns nothing."""
    import io
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    exif = Image.Exif()
    exif[0x0112] = 6
    raw = b"Exif\x00\x00" + exif.tobytes()
    no_turn = Image.Exif()
    no_turn[0x0131] = "imgcls"
    xmp = chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:Description "
                        b"xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\" tiff:Orientation=\"6\"/></x:xmpmeta>")
    profile = chunk(b"zTXt", b"Raw profile type exif\x00\x00"
                    + zlib.compress(f"\nexif\n{len(raw):8d}\n{raw.hex()}".encode()))
    buf = io.BytesIO()
    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    start, end = png.find(b"IDAT") - 4, png.rfind(b"IEND") - 4
    cases = {"xmp": (b"", xmp, (30, 60)), "profile": (b"", profile, (30, 60)),
             # an eXIf before the pixels without an orientation: PIL looks in the later XMP for one
             "exif_then_xmp": (chunk(b"eXIf", no_turn.tobytes()), xmp, (30, 60)),
             "other_text": (b"", chunk(b"tEXt", b"date:modify\x002026-01-01T00:00:00+00:00"), (60, 30))}
    for name, (before, after, size) in cases.items():
        p = tmp_path / f"{name}.png"
        p.write_bytes(png[:start] + before + png[start:end] + after + png[end:])
        rec = imgio.probe(p)
        assert rec["error"] == "" and (rec["width"], rec["height"]) == imgio.load_rgb(p).size == size, name


def test_a_broken_image_header_is_named_corrupt_not_another_format(tmp_path):
    """A PNG, GIF or TIFF cut short in its header (a download that stopped early) or with a bad chunk checksum was
    recorded as 'not an image (unrecognised format)', which tells the user the file is some other kind of file;
    it is a broken image of that format, to download again. A web page or an SVG saved under an image name says
    what it is; a text file stays 'not an image'."""
    import io
    arr = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    for fmt, ext in (("PNG", "png"), ("GIF", "gif"), ("TIFF", "tiff")):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt)
        p = tmp_path / f"cut.{ext}"
        p.write_bytes(buf.getvalue()[:30])
        err = imgio.probe(p)["error"]
        assert err.startswith(f"truncated or corrupt: {fmt} header does not parse (30 bytes)"), err
        with pytest.raises(imgio.ImageReadError, match="truncated or corrupt"):
            imgio.load_rgb(p)
    (tmp_path / "page.jpg").write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>")
    assert "an HTML page" in imgio.probe(tmp_path / "page.jpg")["error"]
    (tmp_path / "logo.png").write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    assert "SVG" in imgio.probe(tmp_path / "logo.png")["error"]
    (tmp_path / "notes.png").write_text("hello")
    assert imgio.probe(tmp_path / "notes.png")["error"] == "not an image (unrecognised format)"


def test_a_macos_resource_fork_listed_by_a_csv_is_named_so(tmp_path):
    """A listing made with find or a glob (a CSV, a manifest) names macOS's ._photo.jpg beside photo.jpg: it was
    'not an image (unrecognised format)', a puzzle for a file named like an image. Its AppleDouble header says
    what it is and that it can go."""
    fork = tmp_path / "._photo.jpg"
    fork.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(60))
    assert "macOS resource fork" in imgio.probe(fork)["error"]
    with pytest.raises(imgio.ImageReadError, match="macOS resource fork"):
        imgio.load_rgb(fork)


def test_an_iphone_heic_photo_renamed_jpg_is_named_heic(tmp_path):
    """An iPhone photo exported or renamed as .jpg is HEIC inside: without pillow-heif it was 'not an image
    (unrecognised format)', while the same file named .heic says what to install. The file's own 'ftyp' brand
    says it is HEIC, whatever its name."""
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    for name in ("IMG_0001.jpg", "IMG_0002.heic"):
        (tmp_path / name).write_bytes(heic)
        err = imgio.probe(tmp_path / name)["error"]
        if imgio.pillow_heif is None:
            assert err.startswith("HEIC/HEIF image") and "pip install pillow-heif" in err, (name, err)
        else:
            assert err != "", name


def test_a_truncated_webp_is_named_truncated_as_other_formats_are(tmp_path):
    """A WebP cut short (a download that stopped) opens in PIL's plugin, which raises 'could not create decoder
    object': it was recorded as 'unreadable header: could not create decoder object', where a PNG or JPEG cut
    short says it is truncated or corrupt, to download again. A text file under a .webp name is still no image."""
    import io
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "WEBP")
    p = tmp_path / "cut.webp"
    p.write_bytes(buf.getvalue()[:len(buf.getvalue()) * 6 // 10])
    err = imgio.probe(p)["error"]
    assert err.startswith("truncated or corrupt: WEBP") and err.endswith("download or export the file again"), err
    with pytest.raises(imgio.ImageReadError, match="truncated or corrupt: WEBP"):
        imgio.load_rgb(p)
    (tmp_path / "notes.webp").write_text("not a picture")
    assert imgio.probe(tmp_path / "notes.webp")["error"] == "not an image (unrecognised format)"


def test_a_whole_bmp_of_a_variant_pil_does_not_read_is_not_told_to_download_again(tmp_path):
    """A BMP whose compression is BI_JPEG (4: a JPEG inside, which PIL's plugin does not read) raises 'Unsupported
    BMP compression (4)' as it opens: the file is whole, and was recorded as 'truncated or corrupt ... download or
    export the file again' once a file that starts as an image and does not open was named broken (a cut WebP).
    It keeps the plugin's own words."""
    import io
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 10, 10)).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    struct.pack_into("<I", data, 30, 4)            # BITMAPINFOHEADER's biCompression: BI_JPEG
    p = tmp_path / "scan.bmp"
    p.write_bytes(bytes(data))
    err = imgio.probe(p)["error"]
    assert err == "unreadable header: Unsupported BMP compression (4)", err


def test_a_corrupt_avif_is_reported_not_raised(tmp_path):
    """Pillow's AVIF plugin raises RuntimeError ('Failed to decode image: Missing or empty image item') from
    Image.open for a damaged file: it went past io's handlers, and eda, clean, train or predict on a folder holding
    one ended in a traceback (exit 1). It is an unreadable file, reported by path like any other."""
    import io

    from PIL import features
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF plugin")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(buf, "AVIF")
    data = bytearray(buf.getvalue())
    at = data.find(b"pitm")              # the primary item's id (after the box's version and flags): no such item
    data[at + 8:at + 10] = b"\x77\x77"
    p = tmp_path / "broken.avif"
    p.write_bytes(bytes(data))
    rec = imgio.probe(p)
    assert rec["error"].startswith("truncated or corrupt: AVIF file does not open: RuntimeError"), rec
    with pytest.raises(imgio.ImageReadError):
        imgio.load_rgb(p)


def test_a_png_whose_pixels_are_whole_is_readable_whatever_follows_them(tmp_path):
    """A PNG cut in its last bytes (IEND, a download that stopped 12 bytes short) or with a bad CRC in a text chunk
    after the pixels: probe's PIL verify() failed on it, so eda, clean, split and train dropped it as 'truncated or
    corrupt' while predict, which decodes it, read it as any image: two steps, two answers for one file. The pixel
    data is whole (zlib's checksum over it holds), so probe reads it as load_rgb does; a PNG cut in its pixels
    stays unreadable for both."""
    import io
    import struct
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    end = png.rfind(b"IEND") - 4
    text = b"Comment\x00scraped"
    cases = {"no_iend.png": png[:end], "bad_text_crc.png": png[:end] + struct.pack(">I", len(text)) + b"tEXt" + text
             + b"\x00\x00\x00\x00" + png[end:]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert imgio.probe(tmp_path / name)["error"] == "", name
        assert imgio.load_rgb(tmp_path / name).size == (30, 20), name
    (tmp_path / "cut.png").write_bytes(png[:len(png) // 2])
    assert imgio.probe(tmp_path / "cut.png")["error"].startswith("truncated or corrupt")
    with pytest.raises(imgio.ImageReadError):
        imgio.load_rgb(tmp_path / "cut.png")


def _png_of_rows(path, w: int, h: int, rows: list[bytes], interlace: int = 0) -> Path:
    """An RGB 8-bit PNG of w x h whose inflated pixel data is `rows` (each row its filter byte, then its bytes): a
    file no writer makes (a bad filter byte, rows missing, Adam7's passes laid out by hand)."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, interlace))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    return path


def _adam7_rows(w: int, h: int, seed: int = 0) -> list[bytes]:
    """The rows of an 8-bit RGB image's seven Adam7 passes (filter type none, random pixels), pass after pass."""
    rng = np.random.default_rng(seed)
    rows = []
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        cols, n = len(range(x0, w, dx)), len(range(y0, h, dy))
        rows += [b"\x00" + rng.integers(0, 256, cols * 3, dtype=np.uint8).tobytes() for _ in range(n if cols else 0)]
    return rows


def test_a_png_row_of_an_unknown_filter_type_is_unreadable_in_the_scan(tmp_path):
    """Each PNG row starts with its filter type, 0 to 4. A row of another (7: a flipped bit) passed the scan, which
    inflated the pixel data without reading the rows, and then failed every loader: eda and clean counted the image
    readable, train skipped it with a warning in the middle of its epochs. The scan reads each row's filter byte
    (each Adam7 pass's rows, interlaced) and names the image unreadable, as a loader would fail; an interlaced PNG
    short of its last pass's rows is as corrupt as a plain one short of its last rows."""
    rng = np.random.default_rng(0)
    w, h = 30, 20
    rows = [bytes([k % 5]) + rng.integers(0, 256, w * 3, dtype=np.uint8).tobytes() for k in range(h)]
    interlaced = _adam7_rows(w, h)
    good = {"plain.png": _png_of_rows(tmp_path / "plain.png", w, h, rows),
            "adam7.png": _png_of_rows(tmp_path / "adam7.png", w, h, interlaced, interlace=1)}
    for name, p in good.items():
        assert imgio.probe(p)["error"] == "", name
        assert imgio._check_png_data(p, slice_bytes=7) == {}, name       # rows cut across slices
        assert imgio.load_rgb(p).size == (w, h), name
    bad = [rows[:5] + [b"\x07" + rows[5][1:]] + rows[6:], rows[:-1] + [b"\xff" + rows[-1][1:]]]
    bad_adam7 = interlaced[:-3] + [b"\x05" + interlaced[-3][1:]] + interlaced[-2:]   # a row of the last pass
    cases = [(_png_of_rows(tmp_path / "f7.png", w, h, bad[0]), 7),
             (_png_of_rows(tmp_path / "f255.png", w, h, bad[1]), 255),
             (_png_of_rows(tmp_path / "f5_adam7.png", w, h, bad_adam7, interlace=1), 5)]
    for p, kind in cases:
        said = f"truncated or corrupt: PNG pixel data has a row of filter type {kind} (0 to 4 are valid)"
        assert imgio.probe(p)["error"] == said, p.name
        with pytest.raises(imgio.ImageReadError, match=re.escape(said)):
            imgio._check_png_data(p, slice_bytes=7)
        with pytest.raises(imgio.ImageReadError):
            imgio.load_rgb(p)
    short = _png_of_rows(tmp_path / "short_adam7.png", w, h, interlaced[:-2], interlace=1)
    need = sum(map(len, interlaced))
    assert imgio.probe(short)["error"] == (f"truncated or corrupt: PNG pixel data holds {need - 2 * (1 + w * 3)} of "
                                           f"{need} bytes")


def test_a_png_whose_chunks_pil_does_not_read_as_pixels_is_unreadable_in_the_scan(tmp_path):
    """The scan inflated every IDAT chunk of a PNG wherever it lay, while PIL's loader reads the first run of them
    only, after the header: a PNG whose IDAT data another chunk splits (a tool that inserts its text chunk at a
    fixed offset) or an IDAT before the IHDR passed the scan and then failed every loader. Each is unreadable in the
    scan, by what is wrong; the IDATs of a stream that ended before another chunk are no pixels of it (PIL does not
    read them either). PIL reads an interlace method other than 0 (2: none the format defines) as Adam7: so does
    the scan (it refused one PIL loads), and plain rows under it are unreadable by their rows."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    w, h = 12, 5
    z = zlib.compress(b"".join(b"\x00" + bytes(range(w * 3)) for _ in range(h)))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    text, end = chunk(b"tEXt", b"Comment\x00x"), chunk(b"IEND", b"")
    cases = {"split.png": (ihdr + chunk(b"IDAT", z[:20]) + text + chunk(b"IDAT", z[20:]) + end,
                           "PNG pixel data is split by a tEXt chunk (the IDAT chunks must follow one another)"),
             "header_last.png": (chunk(b"IDAT", z) + ihdr + end, "PNG pixel data (IDAT) before its header (IHDR)"),
             "interlace2.png": (ihdr[:20] + b"\x02" + ihdr[21:-4] + struct.pack(">I", zlib.crc32(ihdr[4:20] + b"\x02"))
                                + chunk(b"IDAT", z) + end,
                                "PNG pixel data has a row of filter type 6 (0 to 4 are valid)")}
    for name, (data, said) in cases.items():
        p = tmp_path / name
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + data)
        assert imgio.probe(p)["error"] == "truncated or corrupt: " + said, name
        with pytest.raises(imgio.ImageReadError):
            imgio.load_rgb(p)
    whole = tmp_path / "whole_then_junk.png"
    whole.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IDAT", z) + text + chunk(b"IDAT", b"junk") + end)
    assert imgio.probe(whole)["error"] == "" and imgio.load_rgb(whole).size == (w, h)
    adam7 = _png_of_rows(tmp_path / "adam7_as_2.png", w, h, _adam7_rows(w, h), interlace=2)
    assert imgio.probe(adam7)["error"] == "" and imgio.load_rgb(adam7).size == (w, h)


def test_a_png_whose_pixel_data_runs_into_an_apng_frame_s_data_is_unreadable_in_the_scan(tmp_path):
    """PIL's loader reads an fdAT chunk (an APNG frame's data) straight after the IDATs as more of the image's
    pixel data, and fails on one whose sequence number does not follow the last fcTL's (the frame header; none
    before it: 'APNG contains frame sequence errors'): the scan, which stopped at it, recorded the file readable and
    every step failed to load it. It is unreadable in the scan; one in sequence, and an APNG whose frames each
    follow their own fcTL, load and are readable as before."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    w, h = 12, 5
    z = zlib.compress(b"".join(b"\x00" + bytes(range(w * 3)) for _ in range(h)))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    fctl = chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, w, h, 0, 0, 1, 10, 0, 0))
    said = "truncated or corrupt: PNG pixel data (IDAT) runs straight into an APNG frame's data (fdAT) out of its " \
           "sequence (its own fcTL header missing)"
    for name, head, seq, error in (("no_fctl.png", b"", 1, said), ("out_of_sequence.png", fctl, 5, said),
                                   ("in_sequence.png", fctl, 1, "")):
        p = tmp_path / name
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + head + chunk(b"IDAT", z)
                      + chunk(b"fdAT", struct.pack(">I", seq) + z) + chunk(b"IEND", b""))
        assert imgio.probe(p)["error"] == error, name
        if error:
            with pytest.raises(imgio.ImageReadError):
                imgio.load_rgb(p)
        else:
            assert imgio.load_rgb(p).size == (w, h)
    frames = [Image.new("RGB", (w, h), c) for c in ("red", "green", "blue")]
    for default_image in (False, True):
        frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], default_image=default_image)
        assert imgio.probe(tmp_path / "a.png")["error"] == "" and imgio.load_rgb(tmp_path / "a.png").size == (w, h)


def test_a_rerun_does_not_take_an_older_scans_readable_record_of_a_png_row_of_an_unknown_filter_type(tmp_path):
    """eda or clean run again into the same --out take an earlier scan's readable rows (manifest.reuse_scan): a scan
    from before the scan read the rows' filter bytes recorded such a PNG readable, and the rerun kept it so. The
    scan version (io.SCAN_VERSION) is another: every image is scanned again."""
    import json

    from imgcls import manifest as mf
    from imgcls.fsutil import file_stamp
    (tmp_path / "raw" / "a").mkdir(parents=True)
    w, h = 12, 4
    rows = [b"\x00" + bytes(w * 3)] * h
    p = _png_of_rows(tmp_path / "raw" / "a" / "x.png", w, h, rows)
    old = mf.scan_images(mf.load(tmp_path / "raw", scan=False))
    _png_of_rows(p, w, h, rows[:1] + [b"\x07" + rows[1][1:]] + rows[2:])
    old.loc[0, ["bytes", "mtime"]] = file_stamp(p)       # as the older scan recorded the file as it is now
    mf.write(old, tmp_path / "manifest.csv")
    (tmp_path / "summary.json").write_text(json.dumps({"scan_version": 2}))
    again = mf.reuse_scan(mf.load(tmp_path / "raw", scan=False), tmp_path / "manifest.csv", tmp_path / "summary.json")
    assert mf.scan_images(again, require=False)["error"].tolist() == [
        "truncated or corrupt: PNG pixel data has a row of filter type 7 (0 to 4 are valid)"]


def test_a_malformed_exif_tag_is_skipped_quietly(tmp_path):
    """Phone and scraped photos often carry EXIF whose tags point past its end: Pillow's parser warned
    'Truncated File Read' / 'Tag data larger than file. Skipping tag 306' from every step that read one (eda, clean,
    split, train, preprocess, predict, each worker process again), lines that read like a broken image. The pixels
    are fine: the image is read, its intact orientation tag applied, and nothing is printed."""
    import io
    import os
    import subprocess
    import sys
    from pathlib import Path
    ex = Image.Exif()
    ex[0x0112] = 6
    ex[0x0132] = "2020:01:01 00:00:00"
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(buf, "JPEG", exif=ex)
    data = bytearray(buf.getvalue())
    tiff = data.find(b"Exif\0\0") + 6
    at = data.find((data.find(b"2020:01:01") - tiff).to_bytes(4, "little"), tiff)   # DateTime's value offset
    data[at:at + 4] = (60000).to_bytes(4, "little")                                  # ... now past the block's end
    p = tmp_path / "phone.jpg"
    p.write_bytes(bytes(data))
    # in a fresh process, as the CLI runs: pytest sets its own warning filters around each test and its imports
    code = ("import sys; from imgcls import io; p = sys.argv[1]; r = io.probe(p); im = io.load_rgb(p); "
            "io.load_rgba(p); io.thumbnail(p, 16); print(r['error'] or 'ok', r['width'], r['height'], *im.size)")
    run = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(imgio.__file__).parents[1])})
    assert run.stdout.split() == ["ok", "20", "40", "20", "40"], run.stderr
    assert run.stderr == ""


def test_max_pixels_bound(tmp_path):
    p = make_odd_file("over_max_pixels", tmp_path)
    assert imgio.probe(p, max_pixels=40_000)["error"] == ""
    rec = imgio.probe(p, max_pixels=39_999)
    assert rec["error"].startswith("too many pixels: 200x200")
    with pytest.raises(imgio.ImageReadError, match="too many pixels"):
        imgio.thumbnail(p, 32, max_pixels=39_999)


def test_unicode_path(tmp_path):
    p = make_odd_file("unicode_name", tmp_path / "폴더")
    assert imgio.probe(p)["error"] == ""
    assert imgio.load_rgb(p).size == (48, 40)


def test_zero_bytes_reason_from_load(tmp_path):
    p = make_odd_file("zero_bytes", tmp_path)
    with pytest.raises(imgio.ImageReadError, match=r"empty file \(0 bytes\)"):
        imgio.load_rgb(p)


def test_missing_file(tmp_path):
    assert imgio.probe(tmp_path / "nope.png")["error"] == "file not found"
    with pytest.raises(imgio.ImageReadError, match="file not found"):
        imgio.load_rgb(tmp_path / "nope.png")


def test_a_dangling_symlink_is_named_a_broken_symlink_to_its_target(tmp_path):
    """A symlink whose target is gone was recorded 'file not found' though `ls` lists it: read as a wrong path. It
    is 'broken symlink to TARGET' in the scan and every loader, and a table none of whose images can be read says
    the links' targets are gone, not to check the dataset root. A missing file is still 'file not found'."""
    import pandas as pd

    from imgcls import manifest as mf
    from imgcls.errors import UserError
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "a" / "y.png").symlink_to("../moved.png")
    assert imgio.probe(tmp_path / "a" / "x.png")["error"] == f"broken symlink to {tmp_path / 'gone.png'}"
    assert imgio.probe(tmp_path / "a" / "y.png")["error"] == "broken symlink to ../moved.png"
    with pytest.raises(imgio.ImageReadError, match="broken symlink to ../moved.png"):
        imgio.load_rgb(tmp_path / "a" / "y.png")
    assert imgio.is_missing(imgio.probe(tmp_path / "a" / "y.png")["error"]) and imgio.is_missing("file not found")
    df = pd.DataFrame({"root": [str(tmp_path)] * 2, "path": ["a/x.png", "a/y.png"]})
    df = mf.scan_images(df.assign(**{c: None for c in mf.SCAN_COLUMNS if c not in df}), require=False)
    with pytest.raises(UserError, match="the symlinks point at files that are gone"):
        mf.require_readable(df)


def test_thumbnail_of_big_jpeg_is_small_and_draft_decoded(tmp_path):
    p = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)).save(p)
    th = imgio.thumbnail(p, 96)
    assert max(th.size) == 96 and th.mode == "RGB"
    assert imgio.load_rgb(p, draft=(100, 100)).size == (200, 150)   # DCT scaling: 1/8, not a full decode


def test_a_multi_picture_jpeg_is_draft_decoded_too(tmp_path, monkeypatch):
    """Cameras and phones write MPO (a JPEG with more pictures after it); PIL opens it as format MPO, a
    JpegImageFile: thumbnails, embeddings and the scan's decode check use its 1/8 DCT scale, as for a JPEG."""
    p = tmp_path / "phone.jpg"
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8))
    big.save(p, "MPO", save_all=True, append_images=[big.resize((160, 120))])
    assert Image.open(p).format == "MPO"
    assert imgio.load_rgb(p, draft=(100, 100)).size == (200, 150)
    assert max(imgio.thumbnail(p, 96).size) == 96
    from PIL import JpegImagePlugin
    drafts = []
    real_draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda im, *a: drafts.append(a[1]) or real_draft(im, *a))
    rec = imgio.probe(p)
    assert rec["format"] == "MPO" and rec["error"] == "" and (rec["width"], rec["height"]) == (1600, 1200)
    assert drafts == [(200, 150)]            # the decode check's 1/8 scale


@pytest.mark.parametrize("mode,value,expected", [("F", 0.5, 128), ("F", 1.0, 255), ("I", 1000, 255), ("L", 7, 7),
                                                 ("LA", None, 255), ("1", 1, 255)])
def test_to_rgb_modes(mode, value, expected):
    if mode == "F":
        im = Image.fromarray(np.full((4, 5), value, np.float32), mode="F")
    elif mode == "I":
        arr = np.zeros((4, 5), np.int32)
        arr[0, 0] = value
        im = Image.fromarray(arr, mode="I")
    elif mode == "LA":
        im = Image.new("LA", (5, 4), (0, 0))                    # fully transparent black -> white background
    else:
        im = Image.new(mode, (5, 4), value)
    out = imgio.to_rgb(im)
    assert out.mode == "RGB" and out.size == (5, 4)
    assert np.asarray(out)[0, 0].tolist() == [expected] * 3


def test_is_image_name():
    assert imgio.is_image_name("a/B.JPG") and imgio.is_image_name("x.webp")
    assert not imgio.is_image_name("notes.txt") and not imgio.is_image_name("manifest.csv")


def test_exif_orientation_in_png(tmp_path):
    p = tmp_path / "rot.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((30, 60, 3), np.uint8)).save(p, exif=exif.tobytes())
    rec = imgio.probe(p)
    assert (rec["width"], rec["height"]) == (30, 60)
    assert imgio.load_rgb(p).size == (30, 60)


def test_a_pngs_orientation_in_text_chunks_gives_the_size_load_rgb_gives(tmp_path):
    """A PNG may carry its orientation in a text chunk instead of eXIf: ImageMagick 6 writes a photo's EXIF as a
    "Raw profile type exif" zTXt chunk (`convert IMG.jpg IMG.png`), Adobe tools an XMP packet with tiff:Orientation.
    load_rgb (PIL's exif_transpose) turns the image by either, while probe and header_size read no orientation of a
    PNG without eXIf: the manifest said 60x30 for an image every step reads as 30x60."""
    from PIL import PngImagePlugin
    exif = Image.Exif()
    exif[0x0112] = 6
    raw = b"Exif\x00\x00" + exif.tobytes()
    profile = PngImagePlugin.PngInfo()
    profile.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}", zip=True)
    xmp = PngImagePlugin.PngInfo()
    xmp.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description '
                                      'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></x:xmpmeta>')
    arr = np.zeros((30, 60, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    for name, info in (("profile", profile), ("xmp", xmp)):
        p = tmp_path / f"{name}.png"
        Image.fromarray(arr).save(p, pnginfo=info)
        rec = imgio.probe(p)
        im = imgio.load_rgb(p)
        assert rec["error"] == "" and (rec["width"], rec["height"]) == im.size == (30, 60), name
        assert imgio.header_size(p) == (30, 60), name
        assert np.asarray(im)[:15, :, 0].min() > 200, name          # red on top, turned once


def test_a_pngs_malformed_exif_text_reads_upright_in_every_loader_as_in_the_scan(tmp_path):
    """A "Raw profile type exif" text chunk that is no hex: probe (and so eda and clean) recorded the PNG readable
    and upright, while every loader failed it as corrupt (PIL's exif_transpose raised ValueError from fromhex), so
    train and predict met an image the scan had passed. EXIF is advisory: the image reads upright everywhere."""
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", "\nexif\n      10\nzz")
    p = tmp_path / "bad_exif.png"
    Image.new("RGB", (60, 30), (200, 10, 10)).save(p, pnginfo=info)
    rec = imgio.probe(p)
    assert rec["error"] == "" and (rec["width"], rec["height"]) == (60, 30)
    assert imgio.load_rgb(p).size == imgio.load_rgb_or_grey(p).size == imgio.load_rgba(p).size == (60, 30)
    assert [im.size for im in imgio.load_rgb_drafts(p, (8, 64))] == [(60, 30)] * 2


def test_an_orientation_beside_a_mistyped_exif_tag_turns_the_image_in_every_loader_as_in_the_scan(tmp_path):
    """EXIF whose orientation reads (6) beside a tag of the wrong type (YResolution written as text): probe recorded
    the photo turned, 30x60, while PIL's exif_transpose turned the pixels, then raised writing the EXIF back, and the
    loaders returned it unturned, 60x30 (before: failed it as corrupt). The loaders turn it as the scan reads it."""
    import struct

    from PIL import ImageOps
    entries = [struct.pack(">HHI", 0x0112, 3, 1) + b"\x00\x06\x00\x00", struct.pack(">HHI", 0x011B, 2, 4) + b"EOS\x00"]
    mistyped = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + struct.pack(">H", 2) + b"".join(entries) + b"\x00" * 4
    clean = Image.Exif()
    clean[0x0112] = 6
    arr = np.zeros((30, 60, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    for name, exif in (("mistyped", mistyped), ("clean", clean.tobytes())):
        Image.fromarray(arr).save(tmp_path / f"{name}.jpg", exif=exif, quality=95)
    p = tmp_path / "mistyped.jpg"
    rec = imgio.probe(p)
    assert rec["error"] == "" and (rec["width"], rec["height"]) == (30, 60)
    want = np.asarray(imgio.load_rgb(tmp_path / "clean.jpg"))
    assert want.shape == (60, 30, 3) and want[:15, :, 0].min() > 200         # red on top: turned once
    for im in (imgio.load_rgb(p), imgio.load_rgb_or_grey(p), imgio.load_rgba(p).convert("RGB")):
        assert np.array_equal(np.asarray(im), want)
    drafts = zip(imgio.load_rgb_drafts(p, (8, 64)), imgio.load_rgb_drafts(tmp_path / "clean.jpg", (8, 64)))
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in drafts)
    assert ImageOps.exif_transpose(imgio.load_rgb(p)).size == (30, 60)     # not turned again by a caller's own


def test_probe_memory_does_not_grow_with_image_size(tmp_path):
    """probe of a 4000x4000 PNG / JPEG (48 MB decoded) must not decode it at full size. Measured in a fresh
    process: the peak RSS (VmHWM, reset just before) minus the RSS before the probes."""
    import subprocess
    import sys
    arr = np.zeros((4000, 4000, 3), np.uint8)
    arr[::50] = 200
    for ext in ("png", "jpg"):
        Image.fromarray(arr).save(tmp_path / f"big.{ext}")
    code = ("import sys\nfrom imgcls import io\n"
            "def kib(key):\n"
            "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key + ':'))\n"
            "open('/proc/self/clear_refs', 'w').write('5')\n"
            "before = kib('VmRSS')\n"
            "recs = [io.probe(p) for p in sys.argv[1:]]\n"
            "assert all(r['error'] == '' and r['width'] == 4000 for r in recs), recs\n"
            "print((kib('VmHWM') - before) // 1024)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.png"), str(tmp_path / "big.jpg")],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "clear_refs" in r.stderr:
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs)")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) < 16      # MiB; a full decode adds 48


def test_importing_and_decoding_leaves_pils_bomb_guard_to_the_caller(tmp_path):
    """imgcls.io set Image.MAX_IMAGE_PIXELS = None and ignored DecompressionBombWarning process-wide at import: a
    notebook's own Image.open lost PIL's protection once it imported imgcls. After the import and a decode of every
    loader, PIL's limit and the warning filters are as PIL leaves them (in a fresh process, as a notebook has it:
    pytest sets its own filters)."""
    p = make_image(tmp_path / "a.png", size=(24, 16))
    code = ("import sys, warnings; import imgcls; from PIL import Image; default = Image.MAX_IMAGE_PIXELS; "
            "from imgcls import io; p = sys.argv[1]; io.probe(p); io.load_rgb(p); io.load_rgb_or_grey(p); "
            "io.load_rgba(p); io.load_rgb_drafts(p, [8, 16]); io.thumbnail(p, 8); "
            "print(default, Image.MAX_IMAGE_PIXELS, "
            "[f[0] for f in warnings.filters if f[2] is Image.DecompressionBombWarning])")
    run = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(imgio.__file__).parents[1])})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(1024 * 1024 * 1024 // 4 // 3)] * 2 + ["[]"], run.stdout


@pytest.fixture
def small_pil_limit(monkeypatch):
    """PIL's bomb limit at 1,000 pixels: a 40 x 40 image (1,600) warns, a 100 x 100 one (10,000 > 2,000) is an
    error in PIL's own Image.open (no 9,460 x 9,460 image is built)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)


def test_imgcls_decodes_an_image_over_pils_limit_and_the_caller_keeps_the_limit(tmp_path, small_pil_limit):
    big = make_image(tmp_path / "big.png", size=(100, 100))
    over = make_image(tmp_path / "over.png", size=(40, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # PIL's DecompressionBombWarning would raise here
        assert imgio.probe(big, max_pixels=None)["error"] == "" and imgio.probe(over)["error"] == ""
        assert imgio.load_rgb(big, max_pixels=None).size == (100, 100)
        assert imgio.load_rgb_or_grey(big, max_pixels=None).size == (100, 100)
        assert imgio.load_rgba(big, max_pixels=None).size == (100, 100)
        assert imgio.load_rgb_drafts(big, [8, 16], max_pixels=None)[0].size == (100, 100)
        assert imgio.thumbnail(over, 8).size == (8, 8)
    # imgcls's own bound still applies
    assert imgio.probe(big, max_pixels=5_000)["error"].startswith("too many pixels: 100x100")
    # the caller's Image.open, after those decodes, has PIL's guard
    with pytest.raises(Image.DecompressionBombError):
        Image.open(big)
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(over).close()


def test_pils_limit_is_lifted_only_in_the_thread_that_decodes(tmp_path, small_pil_limit):
    """Decoding runs in threads (predict's loader, clean's embeddings): the lift is per thread, so another thread's
    Image.open meanwhile (a notebook's own) keeps PIL's guard, and imgcls's threads do not restore it under each
    other."""
    import threading
    big = make_image(tmp_path / "big.png", size=(100, 100))
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def imgcls_thread():
        with imgio.own_pixel_bound():
            inside.set()
            done.wait(10)
            seen["size"] = Image.open(big).size     # lifted here, still, after the other thread's open

    t = threading.Thread(target=imgcls_thread)
    t.start()
    assert inside.wait(10)
    try:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(big)
    finally:
        done.set()
        t.join(10)
    assert seen["size"] == (100, 100)


def test_a_pillow_without_its_private_bomb_check_still_imports_imgcls_with_the_old_lift():
    """imgcls.io wraps PIL's private Image._decompression_bomb_check (pillow is not pinned above): a Pillow without
    that name must not break `import imgcls.io`; it falls back to the old process-wide lift (no PIL limit), so what
    --max-pixels allows still decodes. A fresh process with the name removed before imgcls is imported (PIL's own
    open then fails, so only the import and the fallback are checked)."""
    import subprocess
    import sys
    code = ("from PIL import Image\n"
            "del Image._decompression_bomb_check\n"
            "import imgcls.io\n"
            "print(Image.MAX_IMAGE_PIXELS, hasattr(Image, '_decompression_bomb_check'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["None", "False"], r.stderr[-2000:]


def _cut_jpeg(path: Path) -> Path:
    """A JPEG of noise cut to half its bytes: PIL loads it (grey below the cut) only where the process set
    ImageFile.LOAD_TRUNCATED_IMAGES."""
    import io
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    return path


def test_a_notebooks_load_truncated_images_is_kept_and_imgcls_still_reports_a_truncated_image(tmp_path):
    """imgcls.io assigned ImageFile.LOAD_TRUNCATED_IMAGES = False at import: a notebook that set it True for its own
    loading lost it when it imported imgcls. A fresh process (the import is what is checked): the setting is intact
    after the import and after imgcls's decodes, the notebook's own load of a cut JPEG works, and imgcls's probe and
    loaders still report the cut JPEG as truncated."""
    cut = _cut_jpeg(tmp_path / "cut.jpg")
    code = ("import sys\n"
            "from PIL import Image, ImageFile\n"
            "ImageFile.LOAD_TRUNCATED_IMAGES = True\n"
            "import imgcls.io as imgio\n"
            "assert ImageFile.LOAD_TRUNCATED_IMAGES is True, 'reset by the import'\n"
            "p = sys.argv[1]\n"
            "err = imgio.probe(p)['error']\n"
            "assert err.startswith('truncated or corrupt'), err\n"
            "for load in (imgio.load_rgb, imgio.load_rgb_or_grey, imgio.load_rgba):\n"
            "    try:\n"
            "        load(p)\n"
            "        raise SystemExit(f'{load.__name__} decoded the cut file')\n"
            "    except imgio.ImageReadError as e:\n"
            "        assert 'truncated' in e.reason, e.reason\n"
            "assert ImageFile.LOAD_TRUNCATED_IMAGES is True, 'not restored'\n"
            "Image.open(p).load()\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code, str(cut)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(imgio.__file__).parents[1])})
    assert r.returncode == 0 and r.stdout.split() == ["ok"], r.stdout[-2000:] + r.stderr[-2000:]


def test_imgcls_decoding_in_one_thread_leaves_the_process_load_truncated_images_to_the_others(tmp_path,
                                                                                                monkeypatch):
    """Decoding runs in threads (predict's loader, clean's embeddings): while one thread decodes for imgcls (strict:
    a cut JPEG is an error there), another thread's own load (a notebook's, which set LOAD_TRUNCATED_IMAGES) still
    gets the process's setting, and the setting is the process's own value once imgcls's decodes end."""
    import threading
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    cut = _cut_jpeg(tmp_path / "cut.jpg")
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def imgcls_thread():
        with imgio.own_pixel_bound():
            inside.set()
            done.wait(10)
            try:        # after the other thread's own load
                imgio.load_rgb(cut)
                seen["error"] = None
            except imgio.ImageReadError as e:
                seen["error"] = e.reason

    t = threading.Thread(target=imgcls_thread)
    t.start()
    assert inside.wait(10)
    try:
        with Image.open(cut) as im:
            im.load()       # the process's own setting: the cut file loads
    finally:
        done.set()
        t.join(10)
    assert seen["error"] and "truncated" in seen["error"]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_a_notebooks_warnings_of_corrupt_exif_are_its_own_and_imgcls_scans_without_them(tmp_path):
    """imgcls.io added an 'ignore' filter for PIL.TiffImagePlugin's UserWarnings at import: a notebook's own decodes
    lost PIL's warnings of corrupt EXIF tags for good. A fresh process (the import is what is checked) that asks for
    every warning: imgcls's scan and loaders of a JPEG whose EXIF tag points past the file print none, the
    notebook's own read of that EXIF afterwards prints PIL's."""
    import io
    import struct
    # one IFD entry: tag 306 (DateTime), 200 ASCII bytes at offset 8, past the end of the EXIF block
    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHII", 0x0132, 2, 200, 8) + b"\0" * 4
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "JPEG", exif=b"Exif\x00\x00" + tiff)
    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        (tmp_path / "data" / cls / "a.jpg").write_bytes(buf.getvalue())
    one = tmp_path / "data" / "cat" / "a.jpg"
    code = ("import sys, warnings\n"
            "warnings.simplefilter('always')\n"
            "from PIL import Image\n"
            "import imgcls.io as imgio\n"
            "from imgcls import manifest\n"
            "df = manifest.load(sys.argv[1], workers=1)\n"
            "assert (df['error'] == '').all() and len(df) == 2, df\n"
            "imgio.load_rgb(sys.argv[2]); imgio.thumbnail(sys.argv[2], 8)\n"
            "print('IMGCLS-DONE', file=sys.stderr, flush=True)\n"
            "with Image.open(sys.argv[2]) as im:\n"
            "    im.getexif()\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data"), str(one)], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(Path(imgio.__file__).parents[1])})
    assert r.returncode == 0, r.stderr[-3000:]
    imgcls_part, _, own_part = r.stderr.partition("IMGCLS-DONE")
    assert "Skipping tag" not in imgcls_part, imgcls_part[-3000:]
    # named at the plugin's line, as PIL's own warn names it (a filter on module PIL.TiffImagePlugin matches it)
    assert re.search(r"PIL.TiffImagePlugin\.py:\d+: UserWarning: Tag data larger than file\. Skipping tag 306",
                     own_part), r.stderr[-3000:]
