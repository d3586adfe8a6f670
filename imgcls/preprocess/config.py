"""preprocess's options (PreprocessConfig: defaults, choices, ranges, --help panels) and the columns it adds."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from imgcls.console import warn
from imgcls.errors import UserError
from imgcls.image_options import DEFAULT_BACKGROUND, RESIZE_MODES, max_pixels_option
from imgcls.options import acts, as_typed, check, flag, keyword_note, option, seed_option, specs
from imgcls.train.config import AUG_PRESETS
from imgcls.oversample import DEFAULT_MAX_FACTOR, TARGET_SET, check_target, oversamples

NO_FACE_POLICIES = ("keep", "center-crop", "drop")
FORMATS = ("auto", "png", "jpg", "webp")
# the longest side each written format holds (libwebp's limit; libjpeg's); PNG holds any
MAX_SIDE = {"webp": ("WebP", 16383), "jpg": ("JPEG", 65500)}
# train's augmentation presets but none (imgcls.train.data.augment_transform), or within-class mixup
OVERSAMPLE_AUGS = tuple(p for p in AUG_PRESETS if p != "none") + ("mixup",)


FACES, BACKGROUND, OUTPUT, OVERSAMPLING = "Faces", "Background", "Output images", "Oversampling"


@dataclass
class PreprocessConfig:
    """Every option of `imgcls preprocess` but the paths (imgcls.options: default, choices, range, help, panel)."""
    remove_bg: bool = option(False, panel=BACKGROUND, flags=("--remove-bg",),
                             help="Remove the background with rembg (model file needed: imgcls models list).")
    rembg_model: str = option("u2netp", panel=BACKGROUND, needs=("remove_bg",), help="rembg model (u2netp is fetchable offline).")
    bg_color: str = option("white", panel=BACKGROUND, help="Colour behind the cut-out and the padding: name or "
                                                            "#rrggbb.")
    keep_alpha: bool = option(False, panel=BACKGROUND, flags=("--keep-alpha",), needs=("remove_bg",),
                              help="Keep rembg's mask as alpha (PNG output) instead of filling.")
    face_crop: bool = option(False, panel=FACES, flags=("--face-crop",),
                             help="Crop to the most confident face (deepface extract_faces, box on the original "
                                  "image).")
    detector: str = option("opencv", panel=FACES, needs=("face_crop",),
                           help="deepface detector backend: opencv (ships with OpenCV) or any other whose weights are "
                                "in $DEEPFACE_HOME/.deepface/weights.")
    face_margin: float = option(0.2, panel=FACES, lo=0, needs=("face_crop",),
                                help="Margin around the face box, a fraction of its size per side.")
    no_face: str = option("keep", panel=FACES, choices=NO_FACE_POLICIES, needs=("face_crop",), help="When no face is found.")
    detect_size: int = option(640, panel=FACES, lo=1, needs=("face_crop",),
                              help="Detect faces on a copy whose longer side is at most this (boxes mapped back).")
    size: int | None = option(None, panel=OUTPUT, lo=8, none="keep the size",
                              help="Square output side in pixels.")
    resize_mode: str = option("pad", panel=OUTPUT, choices=RESIZE_MODES, needs=("size",),
                              help="pad (letterbox) | crop (centre) | squash (N x N, aspect ignored; train's "
                                   "name, formerly stretch here).")
    image_format: str = option("auto", panel=OUTPUT, choices=FORMATS, flags=("--format",),
                               help="auto keeps jpg / png / webp, writes png otherwise. WebP has no grey mode: a "
                                    "grey image is written to it as RGB.")
    quality: int = option(95, panel=OUTPUT, lo=1, hi=100, help="JPEG / WebP quality.")
    max_pixels: int = max_pixels_option()
    oversample: str | None = option(None, panel=OVERSAMPLING, validator=check_target, none="off",
                                    help="Write augmented copies of minority-class images until each class has "
                                         "min(TARGET, count x --oversample-max-factor): median | max | a number.")
    oversample_aug: str = option("medium", panel=OVERSAMPLING, choices=OVERSAMPLE_AUGS,
                                 needs=(("oversample", TARGET_SET),),
                                 help="How a copy differs from its source and its other copies: light (the "
                                      "mirror, then small shifts / rotations) | train's medium | heavy "
                                      "augmentation, or mixup (a blend of two images of the class).")
    oversample_max_factor: float = option(DEFAULT_MAX_FACTOR, panel=OVERSAMPLING, lo=1,
                                          needs=(("oversample", TARGET_SET),),
                                          help="A class grows to at most this many times its image count.")
    seed: int = seed_option(panel=OVERSAMPLING)

    def __post_init__(self) -> None:
        if self.resize_mode == "stretch":     # preprocess's name before it took train's (and timm's) squash
            warn("--resize-mode stretch is now called squash, as in imgcls train; using squash")
            self.resize_mode = "squash"

    def validate(self) -> None:
        """Choices and ranges (imgcls.options.check) and the options that need each other; before any work."""
        check(self)
        if self.keep_alpha and self.image_format == "jpg":
            raise UserError("--keep-alpha needs a format with transparency: --format png or webp"
                            + keyword_note(("image_format", specs(self)["image_format"][1])))
        name, side = MAX_SIDE.get(self.image_format, (None, None))
        if side is not None and self.size is not None and self.size > side:     # every image would fail
            raise UserError(f"--size {self.size} is larger than {name} holds ({side} px a side): give --size {side} "
                            f"or less, or --format png")
        self.bg_rgb()

    def bg_rgb(self) -> tuple[int, int, int]:
        from PIL import ImageColor
        try:
            return ImageColor.getrgb(self.bg_color)[:3]
        except ValueError:
            raise UserError(f"--bg-color '{self.bg_color}' is not a colour; use a name (white, black) or "
                            f"#rrggbb") from None

    def settings(self) -> dict:
        """What the written pixels depend on (a change re-processes everything): every option that acts in this
        config (imgcls.options.acts: --detector only with --face-crop), but the oversampled copies' own (they have
        oversample_settings) and --max-pixels (a decoding guard)."""
        settings = {k: v for k, v in asdict(self).items()
                    if k not in ("max_pixels",) + OVERSAMPLE_FIELDS and acts(self, k)}
        if self.face_crop:      # small images are detected upscaled: the earlier crops of them are made again
            settings["detect_min_side"] = MIN_DETECT_SIDE
        return settings

    def oversample_settings(self) -> dict | None:
        """What the oversampled copies depend on besides their sources' pixels (None: no oversampling)."""
        if not oversamples(self.oversample):      # off (None, or typed: --oversample off)
            return None
        # fill: the copies' rotation fill (each source's border colour; white before), copies: each differs from its
        # source and the source's other copies (light: a mirror, then small affine moves), so older copies are remade
        return {**{k: getattr(self, k) for k in OVERSAMPLE_FIELDS}, "fill": "border", "copies": "distinct"}


# faces are looked for in an image whose longer side is below it on a copy upscaled to it (imgcls.preprocess.faces):
# the opencv Haar cascade (a 24 px window, deepface's minNeighbors 10) found no face in faces/lfw25's 100 25 px
# portraits, 73 of them at 160 px, and no face in its 100 25 px non-faces at either size
MIN_DETECT_SIDE = 160
OVERSAMPLE_FIELDS = ("oversample", "oversample_aug", "oversample_max_factor", "seed")
FACE_LOST = 0.5    # face_kept below it (a face the matte kept less than half of): taken for background, said
# matte_kept below it (the matte kept less than 5% of the image): blank after the background removal, said. Measured
# with u2netp (256 px): portraits it matted 0.44-0.71, clip art 0.11-0.31; small grey portraits it took for background
# (faces/lfw25) 0.005-0.037, masked-face photos 0.004 and 0.024
BLANK_MATTE = 0.05
# the options that change what a model sees of an image: a face crop, the background removed (not --size /
# --resize-mode, a cache the model's own resize undoes, nor how the file is stored)
PIXEL_FIELDS = ("face_crop", "detector", "face_margin", "no_face", "remove_bg", "rembg_model", "bg_color",
                "keep_alpha")
# recorded with them (applied_text), not compared (same_view): the size and layout of the images written, which
# predict's command to prepare test images as the training images were made names too
SIZE_FIELDS = ("size", "resize_mode")


def same_view(a: str, b: str, squares: bool = False) -> bool:
    """Whether two applied_text()s (a checkpoint's meta.preprocess, a test set's) give a model the same pixels: what
    changes no pixel of an image both write is not counted. `--no-face drop` is `--no-face keep` (the images it leaves
    out are predicted as they came, what keep writes; the face crops are the same); `--keep-alpha` is a white
    background (every image is read flattened onto white, imgcls.io); `--bg-color` spelled otherwise
    (`#ffffff`, `WHITE`) is the same colour, and without `--remove-bg` it colours only --size's padding (--size is
    not counted, the model's own resize undoes it, but for `--resize-mode crop`: the centre square cuts the edges of
    a non-square image, which no resize gives back; `squares`: the test images are squares, which it leaves whole).
    A text this cannot read is compared as written."""
    va, vb = _view(a), _view(b)
    if va is None or vb is None:
        return a == b
    return va[:2] == vb[:2] if squares else va == vb


def _applied_values(text: str) -> dict:
    """The fields applied_text `text` sets, with their values (KeyError / IndexError / ValueError: a token that is no
    pixel or size option's, a flag without its value, a value not of its field's type)."""
    table = specs(PreprocessConfig)
    flags = {flag(n, table[n][1]): n for n in PIXEL_FIELDS + SIZE_FIELDS}
    values, tokens = {}, text.split()
    while tokens:
        name = flags[tokens.pop(0)]
        kind = table[name][0].type
        values[name] = True if kind in (bool, "bool") else float(tokens.pop(0)) if kind in (float, "float") \
            else int(tokens.pop(0)) if kind in (int, "int", "int | None") else tokens.pop(0)
    return values


def applied_config(text: str) -> str:
    """applied_text `text` as a Python caller's PreprocessConfig: '--face-crop --face-margin 0.5' is
    "PreprocessConfig(face_crop=True, face_margin=0.5)" (a text this cannot read: its options named as keywords)."""
    try:
        values = _applied_values(text)
    except (KeyError, IndexError, ValueError):
        return f"PreprocessConfig with the keywords of {text}"
    return "PreprocessConfig(" + ", ".join(f"{k}={v!r}" for k, v in values.items()) + ")"


def _view(text: str) -> tuple | None:
    """What applied_text `text` does to the pixels a model sees (None: a token that is no pixel or size option's)."""
    try:
        cfg = PreprocessConfig(**_applied_values(text))
        face = (cfg.detector, float(cfg.face_margin), "keep" if cfg.no_face == "drop" else cfg.no_face) \
            if cfg.face_crop else None
        bg = (cfg.rembg_model, (255, 255, 255) if cfg.keep_alpha else cfg.bg_rgb()) if cfg.remove_bg else None
        crop = bool(cfg.size) and cfg.resize_mode == "crop"
    except (KeyError, IndexError, ValueError, TypeError, UserError):
        return None
    return face, bg, crop


def applied_text(settings: dict) -> str:
    """The options of a preprocess.json's `settings` that change what a model sees, and the size and layout of the
    images written, as typed ('--remove-bg --face-crop --size 384'; '' for none): what a model trained on those
    images needs its test images to go through too, as a command that makes them so."""
    known = {k: v for k, v in settings.items() if k in PIXEL_FIELDS + SIZE_FIELDS}
    return as_typed(PreprocessConfig(**known), PIXEL_FIELDS + SIZE_FIELDS)


def letterbox_fill(settings: dict) -> tuple[int, int, int] | None:
    """The colour a preprocess.json's `settings` letterboxed each image with (`--size N`, `--resize-mode pad`: the
    image padded to a square), None when they did not: a model trained on those squares needs its test images padded
    so too (a squash or crop resize of a square is the model's own resize; a pad is not). `--keep-alpha`'s
    transparent padding is read as imgcls.io's background."""
    if not settings.get("size") or settings.get("resize_mode", "pad") != "pad":
        return None
    cfg = PreprocessConfig(**{k: v for k, v in settings.items() if k in ("bg_color", "keep_alpha")})
    return tuple(DEFAULT_BACKGROUND) if cfg.keep_alpha else cfg.bg_rgb()
