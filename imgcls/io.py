"""The only place images are opened.

- `probe(path)`: what the manifest records (size after EXIF rotation, mode, format, bytes, mtime, sha256, error) without
  a full-resolution decode: JPEGs are decoded at reduced scale (draft), PNGs are checked chunk by chunk (verify),
  so memory does not grow with image size; truncated, empty and non-image files come back with `error` set.
- `load_rgb(path)`: an RGB PIL image with EXIF orientation applied, transparency (alpha, a PNG's colour key)
  flattened onto a background, CMYK / 16-bit / float converted; raises `ImageReadError` with a reason for a bad
  file. `load_rgb_or_grey`: the same, a grey source kept as 'L' (preprocess writes it so); `load_rgb_drafts`:
  load_rgb at several JPEG draft sizes, one decode per distinct DCT scale (predict's TTA views).
- `DECODE_VERSION`: which decoding the loaders' pixels are; caches of numbers computed from them record it, and so
  do export.json's decode recipe (decode_recipe) and a checkpoint's ModelMeta.decode_version. `SCAN_VERSION`: which
  reading of the scan columns probe's are; a step that reuses an earlier scan records it (manifest.scan_record).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps, TiffImagePlugin, UnidentifiedImageError
from imgcls.fsutil import file_stamp, fork_safe_lock

# declared in imgcls.image_options (light: no PIL, for the command line); applied here
from imgcls.image_options import (DEFAULT_BACKGROUND, DEFAULT_MAX_PIXELS, INTERPOLATIONS,  # noqa: F401
                                  RESIZE_MODES, ImageLimits, max_pixels_option)

# formats PIL decodes at a reduced DCT scale (draft): JPEG, and MPO, the multi-picture JPEG some cameras and phones
# write (PIL opens it as a JpegImageFile subclass under another format name)
DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
# the extensions of the files read as images, the common ones first: a CSV's id without an extension is looked for
# with each added in this order (layouts.COMMON_EXTENSIONS), and the first whose file exists is the image
IMAGE_EXTENSION_ORDER = (".jpg", ".png", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif", ".heic", ".heif",
                         ".jfif", ".jpe", ".ppm", ".pgm", ".pbm")
IMAGE_EXTENSIONS = frozenset(IMAGE_EXTENSION_ORDER)
# HEIC / HEIF are read through the pillow-heif plugin when it is installed; without it they are reported, not skipped
HEIF_EXTENSIONS = {".heic", ".heif"}
try:
    import pillow_heif  # type: ignore[import-not-found]
    pillow_heif.register_heif_opener()
except ImportError:
    pillow_heif = None
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}

DECODE_VERSION = 2
"""Bump when the pixels any loader returns change for some file. Caches of numbers computed from decoded pixels
record it (imgcls.embed.save_vectors: the embedding cache, its shards) and rebuild those of another decode version,
so a warm run gives a cold run's numbers; a file written without it counts as 1. export.json's decode recipe
(decode_recipe) carries it for a deployment that follows the recipe; train records it in the checkpoint
(ModelMeta.decode_version, 1 where absent) and predict / export warn of a run trained on another. 2: a PNG's
transparent colour key (tRNS) is flattened onto the background (68e20c8)."""

SCAN_VERSION = 5
"""Bump when probe records other scan columns (width, height, mode, format; an error for a file it read) for some
unchanged file. A step that takes an earlier scan of unchanged files rather than read them again
(manifest.reuse_scan: eda or clean run again into the same --out, readable rows only) records it beside its manifest
(manifest.scan_record) and takes only a scan of this version, so a rerun records what a fresh scan would; one
written without it counts as 1. 2: a PNG's orientation after its pixels (an XMP or raw EXIF text chunk) turns its
recorded size as load_rgb turns it. 3: a PNG row of an unknown filter type, or an interlaced PNG short of rows,
is unreadable. 4: so is a PNG whose IDAT chunks another chunk splits, an IDAT before the IHDR. 5: so is a PNG
whose IDAT chunks run straight into an fdAT out of sequence."""

# We bound pixel counts ourselves (--max-pixels), so a bomb is reported by path, not raised from deep inside PIL, and
# an image over PIL's limit (raised --max-pixels) still decodes. PIL's own guard (Image.MAX_IMAGE_PIXELS, its
# DecompressionBombWarning / Error) is lifted only while this thread runs imgcls's decoding (own_pixel_bound): setting
# MAX_IMAGE_PIXELS = None and ignoring the warning at import took the guard from every Image.open of the process
# that imported imgcls (a notebook's own); setting it for the length of a decode would lift it for every thread
# meanwhile, and restore it under another thread still decoding. PIL checks sizes through one function
# (Image._decompression_bomb_check: open, crop, a GIF / TIFF / MPO frame), looked up at each call: it is wrapped
# once: outside own_pixel_bound it is PIL's check, with the limit the process set, its warning and its error.
_bound = threading.local()
# PIL's check is a private name (pillow>=10 is not pinned above): a Pillow without it gets the old process-wide lift,
# so imgcls still decodes what --max-pixels allows rather than failing at import
_pil_bomb_check = getattr(Image, "_decompression_bomb_check", None)
_pil_bomb_check = getattr(_pil_bomb_check, "imgcls_wraps", _pil_bomb_check)


def _bomb_check(size, *args, **kwargs):
    if getattr(_bound, "depth", 0):
        return None
    return _pil_bomb_check(size, *args, **kwargs)


if _pil_bomb_check is not None:
    _bomb_check.imgcls_wraps = _pil_bomb_check     # a reload of this module wraps PIL's function, not this one
    Image._decompression_bomb_check = _bomb_check
else:       # pragma: no cover - a Pillow whose check is named otherwise
    Image.MAX_IMAGE_PIXELS = None
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


# A truncated file is a bad image to imgcls (probe's `error`, the loaders' ImageReadError), whatever a notebook set
# ImageFile.LOAD_TRUNCATED_IMAGES to for its own loading: assigning False at import reset the process's choice for
# good. PIL has no per-image or per-thread form of it (no hook like the bomb check): it reads that module global, in
# a truth test, at each load() (ImageFile.load, the PNG and JPEG plugins). Where the process set it true, it reads,
# while imgcls decodes in some thread (own_pixel_bound), as _StrictHere: false in the threads decoding for imgcls,
# the process's value in the others; the last of imgcls's decodes to end puts the value itself back (unless the
# process assigned another meanwhile, which stays). A setting and restoring of False around each decode instead
# made another thread's own loads strict meanwhile, and two decoding threads restored it under each other. Where the
# process left it false (PIL's default), nothing is assigned.
_strict_lock = fork_safe_lock()     # a forked child takes it free (no fork inside _strict_enter / _strict_leave)
_strict_users = 0       # threads of this process inside own_pixel_bound


class _StrictHere:
    """ImageFile.LOAD_TRUNCATED_IMAGES while imgcls decodes: false in a thread inside own_pixel_bound, the process's
    own `value` in the others."""

    def __init__(self, value):
        self.value = value

    def __bool__(self) -> bool:
        return False if getattr(_bound, "depth", 0) else bool(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


def _strict_enter() -> None:
    global _strict_users
    with _strict_lock:
        _strict_users += 1
        value = ImageFile.LOAD_TRUNCATED_IMAGES
        if value and not isinstance(value, _StrictHere):   # the process's true (set before, or while others decode)
            ImageFile.LOAD_TRUNCATED_IMAGES = _StrictHere(value)


def _strict_leave() -> None:
    global _strict_users
    with _strict_lock:
        _strict_users -= 1
        value = ImageFile.LOAD_TRUNCATED_IMAGES
        if not _strict_users and isinstance(value, _StrictHere):
            ImageFile.LOAD_TRUNCATED_IMAGES = value.value


def _strict_after_fork() -> None:
    """In a child forked while other threads decoded: only the forking thread (the child's one thread) counted."""
    global _strict_users
    _strict_users = 1 if getattr(_bound, "depth", 0) else 0
    value = ImageFile.LOAD_TRUNCATED_IMAGES
    if not _strict_users and isinstance(value, _StrictHere):
        ImageFile.LOAD_TRUNCATED_IMAGES = value.value


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_strict_after_fork)


# EXIF is advisory here (a tag that does not parse is skipped, a malformed block reads as upright): Pillow's EXIF
# parser (TiffImagePlugin) warns for every corrupt tag it skips ("Truncated File Read", "Tag data larger than file.
# Skipping tag 306"), lines per photo and process that read like a broken image; bad pixel data raises on its own.
# They are dropped in imgcls's own decoding only: a filter added at import silenced them for every decode of the
# process (a notebook's own), and warnings.catch_warnings around a decode swaps the process's filter list, which
# threads decoding at once (predict's loader, clean's embeddings) restore under each other and under the process's
# own changes. TiffImagePlugin looks its `warnings` module up at each warn: it is given one whose warn drops a
# UserWarning in a thread inside own_pixel_bound and elsewhere is warnings.warn, one frame up (the frame it names is
# the plugin's, as before, so a filter of the process on module PIL.TiffImagePlugin still matches).
class _TiffWarnings:
    def __getattr__(self, name):
        return getattr(warnings, name)

    @staticmethod
    def warn(message, category=None, stacklevel=1, source=None, **kwargs):
        kind = category or (type(message) if isinstance(message, Warning) else UserWarning)
        if getattr(_bound, "depth", 0) and issubclass(kind, UserWarning):
            return
        warnings.warn(message, category, stacklevel + 1, source, **kwargs)


TiffImagePlugin.warnings = _TiffWarnings()


@contextlib.contextmanager
def own_pixel_bound():
    """In this thread, for the block (or the call: `@own_pixel_bound()` decorates a function), imgcls's own decoding:
    imgcls's --max-pixels bound is the only one (PIL's bomb check neither warns nor raises), and a truncated file
    fails to load whatever the process set ImageFile.LOAD_TRUNCATED_IMAGES to (_StrictHere); a corrupt EXIF tag is
    skipped without PIL's warning (_TiffWarnings). Every loader here runs in
    it; a step that works on a decoded image with PIL (preprocess's crops of the full-size image) runs in it too.
    Other threads, and this one after the block, keep PIL's guard, the process's setting and its warnings."""
    depth = getattr(_bound, "depth", 0)
    if not depth:
        _strict_enter()
    _bound.depth = depth + 1
    try:
        yield
    finally:
        _bound.depth -= 1
        if not depth:
            _strict_leave()


class ImageReadError(Exception):
    """A file that cannot be used as an image; `reason` is what the manifest's `error` column records."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_image_name(name: str | os.PathLike) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


FILE_NOT_FOUND = "file not found"      # the `error` of a missing file (missing_reason)
BROKEN_SYMLINK = "broken symlink to "   # the `error` of a symlink whose target is gone, before the target


def missing_reason(path: str | os.PathLike) -> str:
    """The `error` of a path that does not open as a file because nothing is there: `broken symlink to TARGET` for a
    symlink whose target is gone (`ls` lists it: 'file not found' read as a wrong path), else `file not found`."""
    try:
        return BROKEN_SYMLINK + os.readlink(path) if os.path.islink(path) else FILE_NOT_FOUND
    except OSError:
        return FILE_NOT_FOUND


def is_missing(reason: str) -> bool:
    """Whether an `error` says the file is not there (missing_reason's: not found, or a broken symlink)."""
    return reason == FILE_NOT_FOUND or reason.startswith(BROKEN_SYMLINK)


def os_error_reason(e: OSError) -> str:
    """The `error` of a file the operating system would not open: missing_reason for a missing one (what a CSV or
    manifest naming a deleted image gets, in every step: eda, clean, train, predict), else `cannot read file: <the
    system's reason>`."""
    if isinstance(e, FileNotFoundError):
        return missing_reason(e.filename) if e.filename is not None else FILE_NOT_FOUND
    return f"cannot read file: {e.strerror or e}"


def not_regular_reason(path: str | os.PathLike) -> str | None:
    """None for a regular file (symlinks followed); else why it is not read: a FIFO, a device (a symlink to
    /dev/zero), a socket or a folder would block or never end. A missing file is left to the reader's own error."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        return os_error_reason(e)
    if stat.S_ISREG(mode):
        return None
    return f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'a special file')}): not read"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _orientation(im: Image.Image, late: dict | None = None) -> int:
    """The EXIF orientation load_rgb turns an opened image by (1: upright, or metadata that does not parse). The
    one reading of it: probe, header_size and the scan's size all come from here. `late`: the info of a PNG's
    metadata chunks after its pixels (_check_png_data), which PIL reads into the image's info as it loads the
    pixels, over the same keys before them."""
    try:
        if im.format == "PNG" and ("exif" not in im.info or late):
            # PIL's PNG getexif() decodes every pixel to look for metadata after the image data (memory grows
            # with image size). The chunks before the pixels are already in im.info, and load_rgb's exif_transpose
            # turns the image by those too: ImageMagick's "Raw profile type exif" text, an XMP packet's
            # tiff:Orientation; those after them are `late`. They are read as PIL reads them, from a stand-in
            # holding that info alone.
            stand_in = Image.new("1", (1, 1))
            stand_in.info = {**im.info, **(late or {})}
            return int(stand_in.getexif().get(_EXIF_ORIENTATION, 1) or 1)
        return int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # malformed EXIF: treat as upright
        return 1


def _oriented_size(im: Image.Image, late: dict | None = None) -> tuple[int, int]:
    """The size of an opened (not yet loaded) image once its EXIF orientation is applied, as load_rgb returns it
    (`late`: _orientation's).
    A TIFF's orientation tag is applied by PIL itself (Pillow >= 11: the opened TIFF's size is already the turned
    one, and load() transposes its pixels), so its size is turned here only where PIL's is still the stored one
    (the TIFF's ImageWidth x ImageLength tags)."""
    w, h = im.size
    if _orientation(im, late) not in _SWAPS_AXES:
        return w, h
    if im.format == "TIFF" and (w, h) != (im.tag_v2.get(256, w), im.tag_v2.get(257, h)):
        return w, h
    return h, w


@own_pixel_bound()      # a header read: PIL's bomb check neither warns nor raises, --max-pixels is the bound
def header_size(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """An image's (width, height) as load_rgb returns it (EXIF orientation applied), from its header alone: no pixel
    is decoded (a PNG's metadata after its pixels is not seen; probe's check decodes to find it). Raises
    ImageReadError as the loaders do (not an image, over `max_pixels`; None: no bound)."""
    with _open_checked(path, max_pixels) as im:
        return _oriented_size(im)


def _open_checked(path, max_pixels: int | None) -> Image.Image:
    """Open lazily (header only) and apply the pixel bound."""
    special = not_regular_reason(path)
    if special:
        raise ImageReadError(path, special)
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        empty = os.path.isfile(path) and os.path.getsize(path) == 0
        raise ImageReadError(path, "empty file (0 bytes)" if empty else _unidentified_reason(path)) from None
    except FileNotFoundError as e:
        raise ImageReadError(path, os_error_reason(e)) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(path, _unopened_reason(path, e, f"{e}")) from None
    except Exception as e:  # a plugin's own error from a corrupt header (AVIF: RuntimeError), not only the above
        raise ImageReadError(path, _unopened_reason(path, e, f"{type(e).__name__}: {e}")) from None
    w, h = im.size
    if max_pixels and w * h > max_pixels:
        im.close()
        raise ImageReadError(path, too_many_pixels(w, h, max_pixels))
    key = im.info.get("transparency")
    if im.format == "PNG" and im.mode == "L" and isinstance(key, int) and im.tile:
        # PIL decodes a 2- or 4-bit grey PNG scaled to 0..255 but keeps its tRNS value as stored (0..3, 0..15)
        im.info["transparency"] = key * _PNG_GREY_SCALE.get(im.tile[0][3], 1)
    return im


_PNG_GREY_SCALE = {"L;2": 85, "L;4": 17}

# the first bytes of the formats PIL reads: a file that starts with one and still does not open is a broken image
# of that format (a download cut short), not some other kind of file
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})   # ISO BMFF 'ftyp'
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def signature_format(head: bytes) -> str | None:
    """The image format a file's first bytes announce (PNG, JPEG, GIF, TIFF, BMP, WEBP, HEIF, AVIF), else None."""
    fmt = next((name for sig, name in _SIGNATURES if head.startswith(sig)), None)
    if fmt is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "WEBP"
    if fmt is None and head[4:8] == b"ftyp":
        fmt = "HEIF" if head[8:12] in _HEIF_BRANDS else "AVIF" if head[8:12] in (b"avif", b"avis") else None
    return fmt


def file_signature_format(path: str | os.PathLike) -> str | None:
    """signature_format of a regular file's first bytes (None for anything else, or a file that cannot be read)."""
    if not_regular_reason(path) is not None:
        return None
    try:
        with open(path, "rb") as fh:
            return signature_format(fh.read(16))
    except OSError:
        return None


def _unidentified_reason(path) -> str:
    """Why PIL could not identify a non-empty file, by its name and first bytes: a HEIC / HEIF photo (named so, or
    an iPhone photo renamed .jpg) without the pillow-heif plugin, a known image signature (a PNG, JPEG, GIF, TIFF,
    BMP or WebP header that does not parse: truncated or corrupt), a macOS resource fork (._photo.jpg, listed by
    a CSV or manifest that names it), an HTML page or an SVG saved under an image name, else an unrecognised
    format."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as e:
        return os_error_reason(e)
    heif = Path(path).suffix.lower() in HEIF_EXTENSIONS or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
    if heif and pillow_heif is None:
        return "HEIC/HEIF image: the installed Pillow cannot read it (pip install pillow-heif, then run again)"
    fmt = signature_format(head)
    if fmt and fmt != "HEIF":
        return _broken_reason(path, fmt, "header does not parse")
    if head.startswith(b"\x00\x05\x16\x07"):    # AppleDouble: what a macOS copy or zip leaves beside each file
        return "not an image (a macOS resource fork, the ._ file beside the real image: delete it)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "not an image (an HTML page saved under an image name: a failed download)"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "not an image (SVG vector graphics: convert it to PNG)"
    return "not an image (unrecognised format)"


def _broken_reason(path, fmt: str, what: str) -> str:
    """The `error` of a file that starts as an image of format `fmt` and does not read (`what` failed): a download
    or export cut short, or corrupt."""
    return f"truncated or corrupt: {fmt} {what} ({os.path.getsize(path)} bytes); download or export the file again"


# a plugin's words for a file of a variant it does not read ('Unsupported BMP compression (4)': a BMP holding a
# JPEG), which may be whole: no download makes it readable
_UNSUPPORTED_VARIANT = re.compile(r"unsupported|not supported|cannot handle|unknown pixel mode", re.IGNORECASE)


def _unopened_reason(path, e: Exception, said: str) -> str:
    """Why PIL identified a file but could not open it (its plugin raised `e`, `said` in words): a file that starts
    as an image (signature_format) is broken (a WebP cut short: libwebp's 'could not create decoder object'), as
    _unidentified_reason says of one PIL did not identify; else its header does not read. An error of the system
    (permission denied) is its own, and so is a variant the plugin says it does not support (_UNSUPPORTED_VARIANT:
    not told to download again)."""
    fmt = None if isinstance(e, OSError) and e.errno is not None else file_signature_format(path)
    if fmt and fmt != "HEIF" and not _UNSUPPORTED_VARIANT.search(said):
        return _broken_reason(path, fmt, f"file does not open: {said}")
    return f"unreadable header: {said}"


def too_many_pixels(w: int, h: int, max_pixels: int) -> str:
    """The `error` of an image over the --max-pixels bound (pixels_over_bound reads it back)."""
    return f"too many pixels: {w}x{h} = {w * h} > --max-pixels {max_pixels}"


_TOO_MANY_PIXELS = re.compile(r"too many pixels: \d+x\d+ = (\d+) > --max-pixels \d+")


def pixels_over_bound(error: str) -> int | None:
    """The pixel count of an image a scan left out as too_many_pixels' `error` names it; None for any other error."""
    found = _TOO_MANY_PIXELS.fullmatch(error)
    return int(found.group(1)) if found else None


@own_pixel_bound()
def probe(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS, hash_file: bool = True,
          decoded: str | None = None) -> dict:
    """Manifest fields for one file. Never raises for a bad image: `error` says what is wrong. `decoded`: the
    sha256 of bytes an earlier scan proved whole (preprocess's input stamp of an image it wrote): a file whose bytes
    are those is not decoded again, its header alone read (size, mode, format; a PNG's metadata after its pixels,
    which may swap its width and height, is not looked for)."""
    rec = {"width": None, "height": None, "mode": None, "format": None, "bytes": None, "mtime": None,
           "sha256": None, "error": ""}
    special = not_regular_reason(path)
    if special:     # never opened: reading a FIFO or /dev/zero would hang the scan
        rec["error"] = special
        return rec
    try:
        # size and mtime from one stat, taken before the hash: a write during the hash leaves a newer mtime on disk
        # than the one recorded, so the next scan (manifest.stale_rows) looks again
        rec["bytes"], rec["mtime"] = file_stamp(path)
        if hash_file:
            rec["sha256"] = file_sha256(path)
    except OSError as e:
        rec["error"] = os_error_reason(e)
        return rec
    if rec["bytes"] == 0:
        rec["error"] = "empty file (0 bytes)"
        return rec
    try:
        im = _open_checked(path, max_pixels)
    except ImageReadError as e:
        rec["error"] = e.reason
        return rec
    try:
        with im:
            rec.update(zip(("width", "height"), _oriented_size(im)), mode=im.mode, format=im.format or "")
            if decoded and rec["sha256"] == decoded:
                return rec
            late = _check_decodes(path, max_pixels)
            if late:    # a PNG's metadata after its pixels: PIL reads it there (over the same keys before them),
                rec.update(zip(("width", "height"), _oriented_size(im, late)))    # so load_rgb applies it
    except ImageReadError as e:
        rec["error"] = e.reason
    except Exception as e:  # PIL raises many types for corrupt data
        rec["error"] = f"truncated or corrupt: {type(e).__name__}: {e}"
    return rec


def _check_decodes(path, max_pixels: int | None) -> dict | None:
    """Prove the pixel data is complete without holding a full-resolution copy (a fresh handle: PIL's verify
    must come straight after open). Returns the info of a PNG's metadata chunks that follow its pixel data
    (_check_png_data; None for other formats), which the opened image's info lacks and load_rgb applies."""
    with _open_checked(path, max_pixels) as im:
        if im.format in DRAFT_FORMATS:
            im.draft(im.mode, (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))  # DCT-domain 1/8 decode
            im.load()
        elif im.format == "PNG":
            # inflate the pixel data in slices: truncation and corrupt zlib (even with valid CRCs) raise here, and a
            # stream that ends whole has passed zlib's own checksum over every pixel row
            late = _check_png_data(path)
            try:
                im.verify()  # walks every chunk and its CRC
            except Exception:
                # the pixels are whole (above): what failed lies after them (a download cut in its last bytes,
                # IEND; a text chunk's CRC), which PIL's loader, and so every step that decodes it, reads past
                pass
            return late
        else:
            im.load()
    return None


# the chunks after a PNG's pixels that can hold its orientation (PIL's PngStream reads each into the image's info as
# it loads the pixels): eXIf, and the text chunks of ImageMagick's "Raw profile type exif" and of an XMP packet
_PNG_META_CHUNKS = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt"})
_PNG_ORIENTATION_KEYS = (b"Raw profile type exif\x00", b"XML:com.adobe.xmp\x00")


def _png_chunk_info(chunks: list[tuple[bytes, bytes]]) -> dict:
    """The info PIL's PNG reader makes of metadata chunks (type, data), in their order: _orientation reads a
    PNG's orientation from it as PIL would."""
    from PIL import PngImagePlugin
    info: dict = {}
    for ctype, data in chunks:
        stream = PngImagePlugin.PngStream(io.BytesIO(data))
        try:
            getattr(stream, "chunk_" + ctype.decode("ascii"))(0, len(data))
        except Exception:   # a chunk PIL skips or stops at: no orientation from it
            continue
        finally:
            info.update(stream.im_info)
    return info


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_FILTERS = bytes(range(5))      # the filter types a row may name: none, sub, up, average, paeth
# Adam7's seven passes: (first column, first row, column step, row step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_rows(ihdr: tuple) -> list[tuple[int, int, int]]:
    """Where a PNG's rows lie in its inflated pixel data: (start, a row's bytes with its filter byte, end) of each
    pass, one or Adam7's seven (a pass of no column or no row has no rows); [] for a colour type PIL does not open."""
    w, h, depth, colour, _, _, interlace = ihdr
    if colour not in _PNG_CHANNELS:
        return []
    bits, at, out = _PNG_CHANNELS[colour] * depth, 0, []
    for x0, y0, dx, dy in _ADAM7 if interlace else ((0, 0, 1, 1),):
        cols, n = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        if cols and n:
            stride = 1 + (cols * bits + 7) // 8
            out.append((at, stride, at + n * stride))
            at += n * stride
    return out


def _bad_filter(buf: bytes, at: int, rows: list[tuple[int, int, int]]) -> int | None:
    """The first filter byte not 0-4 (every decoder refuses the row) among those in `buf`, the inflated pixel data
    from offset `at` (`rows`: _png_rows; bytes past the last row are none); None: all valid. One strided slice per
    pass: no Python step per row."""
    end = at + len(buf)
    for start, stride, stop in rows:
        if stop <= at or start >= end:
            continue
        first = start + -(-max(0, at - start) // stride) * stride
        bad = buf[first - at:min(stop, end) - at:stride].translate(None, _PNG_FILTERS)
        if bad:
            return bad[0]
    return None


def _check_png_data(path, slice_bytes: int = 1 << 20) -> dict:
    """Inflate a PNG's IDAT stream without keeping it (memory stays at one slice): a zlib error, a stream that ends
    early or one shorter than the image's rows (each Adam7 pass's, interlaced), a row whose filter byte is not 0-4,
    an IDAT before the header or after another chunk that ended the first IDATs (PIL's pixel data ends there), an
    fdAT straight after them out of its APNG sequence (PIL reads it as pixel data) are corrupt even when every
    chunk's CRC is right (an interlace method other than 0 is read as Adam7's rows, as PIL reads it). Returns the
    info of the chunks after the first IDAT that may hold an orientation (an eXIf, an EXIF or XMP text:
    _png_chunk_info; {}: none)."""
    d = zlib.decompressobj()
    total = 0
    rows: list[tuple[int, int, int]] = []
    ihdr = None
    after = None        # the chunk that ended the run of IDATs
    seen = False        # an IDAT read
    split = False       # an IDAT after it, not read (PIL does not read it)
    frame = None        # the sequence number of the last APNG frame header (fcTL) before the IDATs
    late: list[tuple[bytes, bytes]] = []

    def corrupt(what: str) -> ImageReadError:
        return ImageReadError(path, f"truncated or corrupt: PNG {what}")

    def inflated(buf: bytes) -> None:
        nonlocal total
        bad = _bad_filter(buf, total, rows) if rows and total < rows[-1][2] else None
        if bad is not None:
            raise corrupt(f"pixel data has a row of filter type {bad} (0 to 4 are valid)")
        total += len(buf)

    with open(path, "rb") as fh:
        fh.read(8)
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, ctype = struct.unpack(">I4s", head)
            if ctype == b"IHDR":
                ihdr = struct.unpack(">IIBBBBB", fh.read(13))
                fh.seek(length - 13 + 4, os.SEEK_CUR)
                rows = _png_rows(ihdr)
                continue
            if ctype != b"IDAT":
                if ctype == b"IEND":
                    break
                if ctype == b"fcTL" and not seen and length >= 4:
                    frame = struct.unpack(">I", fh.read(4))[0]
                    fh.seek(length, os.SEEK_CUR)
                    continue
                if seen and after is None:
                    after = ctype.decode("latin-1")
                    if ctype == b"fdAT":
                        # PIL's loader reads it as more pixel data, and fails where its number does not follow the
                        # last fcTL's (none: every number)
                        seq = fh.read(min(length, 4))
                        fh.seek(-len(seq), os.SEEK_CUR)
                        if frame is None or len(seq) < 4 or struct.unpack(">I", seq)[0] != frame + 1:
                            raise corrupt("pixel data (IDAT) runs straight into an APNG frame's data (fdAT) out of "
                                          "its sequence (its own fcTL header missing)")
                if total and ctype in _PNG_META_CHUNKS:
                    data = fh.read(length)
                    fh.seek(4, os.SEEK_CUR)
                    if ctype == b"eXIf" or data.startswith(_PNG_ORIENTATION_KEYS):
                        late.append((ctype, data))
                    continue
                fh.seek(length + 4, os.SEEK_CUR)
                continue
            if ihdr is None:
                raise corrupt("pixel data (IDAT) before its header (IHDR)")
            seen = True
            if after is not None:
                split = True
                fh.seek(length + 4, os.SEEK_CUR)
                continue
            data = fh.read(length)
            fh.read(4)
            try:
                inflated(d.decompress(data, slice_bytes))
                while d.unconsumed_tail:
                    inflated(d.decompress(d.unconsumed_tail, slice_bytes))
            except zlib.error as e:
                raise corrupt(f"pixel data does not decompress ({e})") from None
    try:
        inflated(d.flush())
    except zlib.error as e:
        raise corrupt(f"pixel data does not decompress ({e})") from None
    if not d.eof:
        raise corrupt(f"pixel data is split by a {after} chunk (the IDAT chunks must follow one another)" if split
                      else "pixel data ends early")
    need = rows[-1][2] if rows else 0
    if total < need:
        raise corrupt(f"pixel data holds {total} of {need} bytes")
    return _png_chunk_info(late)


@own_pixel_bound()
def load_rgb(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS,
             background: tuple[int, int, int] = DEFAULT_BACKGROUND, draft: tuple[int, int] | None = None
             ) -> Image.Image:
    """Decode to RGB. `draft=(w, h)` lets JPEG decode at a reduced scale >= that size (thumbnails, embeddings)."""
    im = _open_checked(path, max_pixels)
    if draft and im.format in DRAFT_FORMATS:
        im.draft("RGB", draft)
    return _decode_rgb(path, im, background)


# the turn of each EXIF orientation (PIL's exif_transpose's)
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
# the info keys PIL reads an orientation from (Image.getexif)
_ORIENTATION_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")


def _upright(im: Image.Image) -> Image.Image:
    """A loaded image turned by its EXIF orientation, as _orientation (and so the scan) reads it: PIL's
    exif_transpose, or where it raises, the turn _orientation reads. Metadata that does not parse (a PNG's "Raw
    profile type exif" text that is no hex) reads as upright; an orientation that reads beside a tag PIL cannot
    write back (YResolution written as text: exif_transpose turns, then raises) still turns the image: the loaders
    returned it unturned while the scan recorded it turned."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:
        pass
    method = _TRANSPOSE.get(_orientation(im))
    if method is None:
        return im
    turned = im.transpose(method)
    for key in _ORIENTATION_KEYS:       # turned once: a later exif_transpose of it does not turn it again
        turned.info.pop(key, None)
    return turned


def _decode_rgb(path, im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """An opened (and maybe drafted) image -> RGB, EXIF applied; a decode failure is an ImageReadError."""
    try:
        im.load()
        im = _upright(im)
        return to_rgb(im, background)
    except ImageReadError:
        raise
    except Exception as e:
        raise ImageReadError(path, f"truncated or corrupt: {type(e).__name__}: {e}") from None


# modes that hold one grey channel (with alpha, or at 1, 16 or 32 bits): load_rgb_or_grey keeps them grey
GREY_MODES = frozenset({"1", "L", "LA", "La", "I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


@own_pixel_bound()
def load_rgb_or_grey(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                     background: tuple[int, int, int] = DEFAULT_BACKGROUND, draft: tuple[int, int] | None = None
                     ) -> Image.Image:
    """load_rgb, except that a grey source (GREY_MODES) comes back as 8-bit 'L', the very grey level load_rgb gives
    in each of R, G and B (for a step that writes images: a third of the bytes; load_rgb reads them back as the same
    RGB). A grey image with transparency (LA, or a PNG's transparent grey value) over a `background` that is not
    grey is RGB, as load_rgb makes it."""
    im = _open_checked(path, max_pixels)
    see_through = im.mode in ("LA", "La") or "transparency" in im.info   # alpha, or a PNG's transparent grey value
    grey = im.mode in GREY_MODES and not (see_through and len(set(background)) > 1)
    if draft and im.format in DRAFT_FORMATS:
        im.draft("RGB", draft)
    rgb = _decode_rgb(path, im, background)      # load_rgb's own conversions, then its (equal) R channel
    return rgb.getchannel("R") if grey else rgb


@own_pixel_bound()
def load_rgb_drafts(path: str | os.PathLike, sides: Sequence[int], max_pixels: int | None = DEFAULT_MAX_PIXELS,
                    background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> list[Image.Image]:
    """[load_rgb(path, draft=(s, s)) for s in sides], the same pixels, with one decode per distinct DCT scale: a
    PNG, or a JPEG whose sides reach the same scale, is decoded once (the images are then one object)."""
    im = _open_checked(path, max_pixels)
    if im.format not in DRAFT_FORMATS:
        one = _decode_rgb(path, im, background)
        return [one] * len(sides)
    done: dict[tuple, Image.Image] = {}
    out = []
    for k, s in enumerate(sides):
        if k:       # PIL drafts an opened JPEG once: another scale is another open (the header only)
            im = _open_checked(path, max_pixels)
        im.draft("RGB", (s, s))
        key = (im.mode, im.size)        # the size after draft is the DCT scale chosen
        if key in done:
            im.close()
        else:
            done[key] = _decode_rgb(path, im, background)
        out.append(done[key])
    return out


def decode_recipe(draft: int | None = None) -> dict:
    """What load_rgb(path, draft=(draft, draft)) does to a file, in words and values, for a deployment that must
    reproduce it without imgcls (export.json): the draft scale, EXIF orientation, transparency's background, the
    conversions to 8-bit RGB; `version`: DECODE_VERSION, which a deployment written for one recipe compares, so an
    export from an imgcls whose loaders return other pixels is not followed as the recipe it knows."""
    return {
        "version": DECODE_VERSION,
        "draft": None if not draft else {
            "formats": sorted(DRAFT_FORMATS), "size": [draft, draft],
            "how": "decoded at the reduced DCT scale 1/k, k the largest of 8, 4, 2, 1 with k <= min(width // size, "
                   "height // size): PIL im.draft('RGB', size) before im.load()"},
        "exif_orientation": "applied after decoding (PIL ImageOps.exif_transpose)",
        "alpha": {"background": list(DEFAULT_BACKGROUND),
                  "how": "RGBA, LA, PA and palette images with transparency are composited onto background: "
                         "rgb * a + background * (1 - a), a = alpha / 255 (PIL Image.paste with the alpha as mask); "
                         "a grey or RGB PNG's tRNS colour key makes the pixels equal to it (at the stored bit "
                         "depth) background"},
        "to_rgb": "8-bit RGB: L, 1, CMYK, YCbCr by PIL convert('RGB'); 16-bit values / 257, rounded; float images "
                  "x 255 when within [0, 1], else stretched min..max to 0..255",
    }


@own_pixel_bound()
def load_rgba(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode to RGBA (EXIF applied), keeping transparency: for steps that composite themselves."""
    im = _open_checked(path, max_pixels)
    try:
        im.load()
        im = _upright(im)
        key = colour_key_mask(im)       # a grey or RGB PNG's transparent value
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            im = _scale_to_8bit(im).convert("RGB")
        rgba = im.convert("RGBA")
        if key is not None:
            rgba.putalpha(key)
        return rgba
    except Exception as e:
        raise ImageReadError(path, f"truncated or corrupt: {type(e).__name__}: {e}") from None


def to_rgb(im: Image.Image, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> Image.Image:
    """Any PIL mode -> RGB: alpha (RGBA, LA, PA, P with transparency, a grey or RGB PNG's transparent colour key)
    composited onto `background`, 16-bit and float scaled to 8 bits (PIL's own convert would clip them), CMYK
    converted."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, tuple(background))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    key = colour_key_mask(im)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        rgb = _scale_to_8bit(im).convert("RGB")
    else:
        rgb = im if mode == "RGB" else im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    if key is None:
        return rgb
    bg = Image.new("RGB", rgb.size, tuple(background))
    bg.paste(rgb, mask=key)
    return bg


# the modes whose PNG may name one transparent value (a tRNS chunk; PIL puts it in im.info["transparency"])
_COLOUR_KEY_MODES = frozenset({"1", "L", "I;16", "I;16B", "I;16L", "I;16N", "I", "RGB"})


def colour_key_mask(im: Image.Image) -> Image.Image | None:
    """The alpha of an image whose transparency is one colour key (a grey or RGB PNG's tRNS: the pixels equal to
    it are transparent), as an 'L' mask of 0 and 255, compared at the stored bit depth (a 16-bit key is a 16-bit
    value); None for an image without one."""
    key = im.info.get("transparency")
    if im.mode not in _COLOUR_KEY_MODES or not isinstance(key, tuple if im.mode == "RGB" else int):
        return None
    arr = np.asarray(im.convert("L") if im.mode == "1" else im)   # '1' reads as bool; PIL's key for it is 0 / 255
    hit = arr == np.asarray(key)
    if hit.ndim == 3:
        hit = hit.all(axis=2)
    return Image.fromarray(np.where(hit, 0, 255).astype(np.uint8), mode="L")


def _scale_to_8bit(im: Image.Image) -> Image.Image:
    arr = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16"):
        arr = arr / 257.0
    else:
        hi = float(arr.max()) if arr.size else 0.0
        lo = float(arr.min()) if arr.size else 0.0
        if im.mode == "F" and 0.0 <= lo and hi <= 1.0:
            arr = arr * 255.0
        elif hi > 255.0 or lo < 0.0:
            arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


@own_pixel_bound()
def thumbnail(path: str | os.PathLike, size: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
              background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> Image.Image:
    """A small RGB copy (JPEG draft-decoded, so cheap for big photos)."""
    return shrink(load_rgb(path, max_pixels=max_pixels, background=background, draft=(size, size)), size, copy=False)


def shrink(im: Image.Image, size: int, copy: bool = True) -> Image.Image:
    """At most size x size, aspect kept (PIL's thumbnail, bilinear): thumbnail()'s step after the decode, for an image
    already decoded."""
    if copy:
        im = im.copy()
    im.thumbnail((size, size), Image.Resampling.BILINEAR)
    return im
