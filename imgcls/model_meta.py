"""Model metadata: what a checkpoint says about its network, typed and range-checked when read.

A checkpoint's `meta` (see `imgcls.train.checkpoint`) tells predict / ensemble / export / TTA how to rebuild the
network and feed it: the timm model, the final classes, the heads and how they decode into the final classes, the
input size, normalisation, resize mode, interpolation and fill colour. It is read from files a user may have been
handed, so every value is checked before it is used: an `img_size` of 30000 would make predict allocate
gigabytes per image.

    meta = ModelMeta.from_dict(obj["meta"], source=path)   # a UserError names the file and the bad value
    meta.to_dict()                                         # plain lists / numbers (torch.load weights_only reads it)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from imgcls.errors import UserError
from imgcls.profile_names import edges_fault

DECODES = ("single", "profile", "product")
OLD_DECODES = {"profile18": "profile"}   # what earlier checkpoints call a decode
BRANCHES = ("shallow", "deep")
IMG_SIZE_RANGE = (8, 4096)       # as train --img-size accepts; a 4096 px view is 192 MiB as float32, not GBs
CROP_FROM_RANGE = (1.0, 4.0)     # train --crop-from's range (TrainConfig declares the option with it)
MAX_CLASSES = 100_000            # final classes (a product decode's table has this many rows)
MAX_HEADS = 16


def product_class(indices) -> str:
    """A product decode's class as its classes spell it: the heads' class indices joined ('1_0' for mask 1,
    gender 0); train names the classes so, product_truth the rows' true ones."""
    return "_".join(str(int(i)) for i in indices)


@dataclass(frozen=True)
class Head:
    name: str
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ModelMeta:
    model: str                                   # timm model name
    classes: tuple[str, ...]                     # final labels, in output index order
    heads: tuple[Head, ...]                      # one head "label" for single; e.g. mask / gender / age_band
    decode: str = "single"                       # single | profile (mask/gender/age_band) | product
    img_size: int = 224
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bilinear"
    resize_mode: str = "squash"
    branch: str = "shallow"
    drop_rate: float = 0.0
    target: str = "label"                        # the manifest column the final classes are values of: label, or
    #                                              an attribute (mask, gender, age_band, ...) of `train --target`
    fill: tuple[int, ...] = (255, 255, 255)      # RGB of pixels from outside the image (pad resize, rotation,
    #                                              TTA's smaller scales): train --fill; older checkpoints white
    preprocess: str | None = None                # what imgcls preprocess did to the training images, as typed
    #                                              ('--face-crop --remove-bg --size 96'; '' none); None: not known
    letterbox: tuple[int, ...] | None = None     # RGB preprocess padded the training images to squares with
    #                                              (--size, --resize-mode pad); test images are padded so first
    age_bands: tuple[int, ...] | None = None     # the age band edges the run's age_band values were made with
    #                                              (split --age-bands 40: (40,)); None: not a profile run, an
    #                                              older checkpoint, or edges train could not tell (not checked)
    crop_from: float = 1.0                       # train --crop-from: the model trained on img_size crops of images
    #                                              resized to crop_from x img_size (1.0: whole images; older
    #                                              checkpoints 1.0); predict still resizes each test image whole
    decode_version: int = 1                      # imgcls.io.DECODE_VERSION of the loaders the training images were
    #                                              decoded with (a checkpoint without it: 1, as io counts a cache)
    extra: dict = field(default_factory=dict, compare=False)   # keys this version does not know, kept as read

    @property
    def head_sizes(self) -> list[int]:
        return [len(h.classes) for h in self.heads]

    @property
    def head_names(self) -> list[str]:
        return [h.name for h in self.heads]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def multi(self) -> bool:
        return self.decode != "single"

    @property
    def attribute(self) -> str:
        """The column a single-attribute model's classes are values of (`train --target mask`: 'mask'), what its
        lines name beside its class count and its scores ('3 classes of mask', 'val macro-F1 (mask)'); '' for a
        model of the label (one head or several)."""
        return self.target if self.target != "label" and not self.multi else ""

    @property
    def prep_key(self) -> tuple:
        """What the input preprocessing depends on: checkpoints with equal keys share one decoded view batch."""
        return self.img_size, self.resize_mode, self.interpolation, self.mean, self.std, self.fill, self.letterbox

    def class_meanings(self) -> dict[str, str]:
        """What each final class means where the metadata tells (imgcls.profiles.model_class_meanings: a profile
        run's '4' -> 'wear, female, 30-59'); {} for other models."""
        from imgcls.profiles import model_class_meanings
        return model_class_meanings(self.classes, self.target, self.age_bands)

    def product_truth(self, frame):
        """A product decode's true class of each row of `frame` (a DataFrame) as its classes spell it: the heads'
        columns joined (product_class), as train made its classes ('1_0' for heads mask, gender; '' where a row
        lacks one); None for the other decodes, whose truth is the `target` column, and for a frame without every
        head column."""
        if self.decode != "product" or any(h.name not in frame.columns for h in self.heads):
            return None
        import pandas as pd
        parts = [pd.to_numeric(frame[h.name], errors="coerce") for h in self.heads]
        whole = pd.concat([(v == v.round()) & v.notna() for v in parts], axis=1).all(axis=1)
        rows = zip(*(v.tolist() for v in parts))
        return pd.Series([product_class(row) if ok else "" for row, ok in zip(rows, whole.tolist())],
                         index=frame.index, dtype=object)

    def decode_table(self) -> list[tuple[int, ...]]:
        """For each final class index, the class index of each head (rows of the product decode). profile: the
        mask competition's formula (imgcls.profiles.ProfileScheme), whose label order is the heads' product."""
        import itertools
        if self.decode == "single":
            return [(i,) for i in range(self.n_classes)]
        if self.decode == "profile":
            from imgcls.profiles import ProfileScheme
            return ProfileScheme(self.head_sizes[2]).table()
        return list(itertools.product(*(range(k) for k in self.head_sizes)))

    @classmethod
    def coerce(cls, meta) -> "ModelMeta":
        """A ModelMeta as is; a dict (e.g. a checkpoint's) read and checked."""
        return meta if isinstance(meta, ModelMeta) else cls.from_dict(meta, source="model metadata")

    def to_dict(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d["classes"] = list(self.classes)
        d["heads"] = [{"name": h.name, "classes": list(h.classes)} for h in self.heads]
        d["mean"], d["std"], d["fill"] = list(self.mean), list(self.std), list(self.fill)
        d["letterbox"] = None if self.letterbox is None else list(self.letterbox)
        d["age_bands"] = None if self.age_bands is None else list(self.age_bands)
        return {**extra, **d}

    @classmethod
    def from_dict(cls, d, source: str = "checkpoint") -> "ModelMeta":
        """Typed and checked; `source` (a file) is named in the error. Keys older checkpoints lack (resize_mode,
        interpolation, branch, drop_rate, target, fill, crop_from, decode_version) take the values those versions
        used."""
        def bad(what: str) -> UserError:
            return UserError(f"{source}: model metadata {what}; the file is damaged or not written by imgcls train")

        if not isinstance(d, dict):
            raise bad("is not a mapping")
        for key in ("model", "classes", "heads", "decode", "img_size", "mean", "std"):
            if key not in d:
                raise bad(f"lacks '{key}'")
        model = d["model"]
        if not isinstance(model, str) or not 0 < len(model) <= 200:
            raise bad(f"model {model!r} is not a timm model name")
        classes = _str_list(d["classes"], "classes", bad)
        if not 1 <= len(classes) <= MAX_CLASSES:
            raise bad(f"has {len(classes)} classes (1 to {MAX_CLASSES} allowed)")
        if not isinstance(d["heads"], list) or not 1 <= len(d["heads"]) <= MAX_HEADS:
            raise bad(f"heads must be a list of 1 to {MAX_HEADS} heads")
        heads = []
        for h in d["heads"]:
            if not isinstance(h, dict) or not isinstance(h.get("name"), str) or "classes" not in h:
                raise bad("has a head without a name and classes")
            hc = _str_list(h["classes"], f"head {h['name']} classes", bad)
            if not 1 <= len(hc) <= MAX_CLASSES:
                raise bad(f"head {h['name']} has {len(hc)} classes (1 to {MAX_CLASSES} allowed)")
            heads.append(Head(h["name"], hc))
        decode = _choice(OLD_DECODES.get(d["decode"], d["decode"]), "decode", DECODES, bad)
        if decode == "single":
            if len(heads) != 1 or len(heads[0].classes) != len(classes):
                raise bad(f"decode single needs one head with the {len(classes)} classes")
        else:
            n = math.prod(len(h.classes) for h in heads)
            if n != len(classes):
                raise bad(f"decode {decode}: the heads' product has {n} classes, classes has {len(classes)}")
            if decode == "profile" and ([h.name for h in heads] != ["mask", "gender", "age_band"]
                                        or [len(h.classes) for h in heads][:2] != [3, 2]):
                raise bad("decode profile needs the heads mask (3 classes), gender (2), age_band, in that order")
        img_size = d["img_size"]
        if isinstance(img_size, bool) or not isinstance(img_size, int) \
                or not IMG_SIZE_RANGE[0] <= img_size <= IMG_SIZE_RANGE[1]:
            raise bad(f"img_size {img_size!r} is not an integer from {IMG_SIZE_RANGE[0]} to {IMG_SIZE_RANGE[1]}")
        mean = _floats3(d["mean"], "mean", bad, lambda v: -10 <= v <= 10)
        std = _floats3(d["std"], "std", bad, lambda v: 1e-6 <= v <= 10)
        from imgcls.io import INTERPOLATIONS, RESIZE_MODES
        interpolation = _choice(d.get("interpolation", "bilinear"), "interpolation", INTERPOLATIONS, bad)
        resize_mode = _choice(d.get("resize_mode", "squash"), "resize_mode", RESIZE_MODES, bad)
        branch = _choice(d.get("branch", "shallow"), "branch", BRANCHES, bad)
        drop_rate = d.get("drop_rate", 0.0)
        if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
            raise bad(f"drop_rate {drop_rate!r} is not in [0, 1)")
        target = d.get("target", "label")
        if not isinstance(target, str) or not 0 < len(target) <= 200:
            raise bad(f"target {target!r} is not a column name")
        if target != "label" and decode != "single":
            raise bad(f"target {target!r}: a single-attribute model has decode single, not {decode}")
        fill = _rgb(d.get("fill", [255, 255, 255]), "fill", bad)
        letterbox = None if d.get("letterbox") is None else _rgb(d["letterbox"], "letterbox", bad)
        preprocess = d.get("preprocess")
        if preprocess is not None and (not isinstance(preprocess, str) or len(preprocess) > 1000):
            raise bad(f"preprocess {str(preprocess)[:80]!r} is not the text of preprocess options")
        age_bands = d.get("age_bands")
        if age_bands is not None:       # band edges (profile_names.edges_fault), at most 1000 (fewer than MAX_CLASSES)
            what = edges_fault(age_bands) if isinstance(age_bands, (list, tuple)) else "is not a list of ages"
            if not what and not all(isinstance(x, int) for x in age_bands):
                what = "is not plain integers"
            if not what and max(age_bands) > 1000:
                what = "is not ages up to 1000"
            if what:
                raise bad(f"age_bands {str(age_bands)[:80]} {what} (the band edges)")
            age_bands = tuple(age_bands)
            if decode == "profile" and len(age_bands) + 1 != len(heads[2].classes):
                raise bad(f"age_bands {list(age_bands)} make {len(age_bands) + 1} bands, the age_band head has "
                          f"{len(heads[2].classes)}")
        crop_from = d.get("crop_from", 1.0)
        if isinstance(crop_from, bool) or not isinstance(crop_from, (int, float)) \
                or not CROP_FROM_RANGE[0] <= crop_from <= CROP_FROM_RANGE[1]:
            raise bad(f"crop_from {crop_from!r} is not a number from {CROP_FROM_RANGE[0]:g} to {CROP_FROM_RANGE[1]:g}")
        decode_version = d.get("decode_version", 1)
        if isinstance(decode_version, bool) or not isinstance(decode_version, int) or not 1 <= decode_version <= 1000:
            raise bad(f"decode_version {decode_version!r} is not a positive integer (imgcls.io.DECODE_VERSION)")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        extra = {k: v for k, v in d.items() if k not in known}
        return cls(model, classes, tuple(heads), decode, img_size, mean, std, interpolation, resize_mode, branch,
                   float(drop_rate), target, fill, preprocess, letterbox, age_bands, float(crop_from), decode_version,
                   extra)


def decode_differs(metas: dict) -> str:
    """One line for the models of `metas` ({name: ModelMeta}) whose training images were decoded by other loaders
    than this imgcls's (meta.decode_version against imgcls.io.DECODE_VERSION): the pixels they see now differ from
    those they learnt from for some files (io's DECODE_VERSION notes which); "" where every one matches."""
    from imgcls.io import DECODE_VERSION
    other: dict[int, list[str]] = {}
    for name, meta in metas.items():
        if meta.decode_version != DECODE_VERSION:
            other.setdefault(meta.decode_version, []).append(str(name))
    if not other:
        return ""
    what = "; ".join(f"{', '.join(names)} trained on images decoded as version {v}"
                     for v, names in sorted(other.items()))
    return (f"{what}; this imgcls decodes as version {DECODE_VERSION} (imgcls.io.DECODE_VERSION), so some images "
            f"reach the model as other pixels than it learnt from: retrain for identical inputs")


def _str_list(v, what: str, bad) -> tuple[str, ...]:
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        raise bad(f"{what} is not a list of names")
    out = tuple(str(x) for x in v)
    if len(set(out)) != len(out):
        raise bad(f"{what} has a name twice")
    return out


def _rgb(v, what: str, bad) -> tuple[int, int, int]:
    if not isinstance(v, (list, tuple)) or len(v) != 3 \
            or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 255 for x in v):
        raise bad(f"{what} {v!r} is not three integers from 0 to 255 (RGB)")
    return tuple(v)


def _floats3(v, what: str, bad, ok) -> tuple[float, float, float]:
    if not isinstance(v, (list, tuple)) or len(v) != 3 \
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise bad(f"{what} is not three numbers (one per RGB channel)")
    if not all(math.isfinite(x) and ok(x) for x in v):
        raise bad(f"{what} {list(v)} is out of range")
    return tuple(float(x) for x in v)


def _choice(v, what: str, allowed, bad) -> str:
    if v not in allowed:
        raise bad(f"{what} {v!r} is not one of {', '.join(allowed)}")
    return v
