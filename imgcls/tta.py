"""Test-time augmentation: which views of an image the model sees, and how their predictions are merged.

A TTA spec is `+`-joined parts (`imgcls predict --tta`):

    none                 the plain view only (what validation saw)
    flip                 + the horizontally flipped view (x2)
    crops | five | ten   + five crops (four corners + centre) of the image resized to S / 0.875; `ten` adds their flips
    scales=0.9,1.0,1.1   + zoomed views: the image resized to S*s, then centre-cropped (s > 1) or padded with the fill
                         (s < 1) to S

e.g. `flip`, `flip+crops`, `scales=0.9,1.0,1.1`, `flip+scales=0.9,1.1`. Views: one per scale, plus the crops, and
`flip` doubles them all (flip+crops = 12 views). The plain view is always view 0 (scale 1.0 is added when a scale
list omits it), so one
pass gives predictions with and without TTA (`--eval` prints both). Every view has the model's input size S x S,
so all views of a batch go through the network as one tensor. The plain view (and the scales <= 1) is cut from the
image decoded as validation decoded it (a JPEG at the draft scale of S), the crops and the scales > 1 from a decode
at the draft scale of the largest side they are resized to (ViewMaker.draft_sides, io.load_rgb_drafts).

Merging (`--tta-merge`): `mean` averages the views' probabilities; `logits` averages the logits then applies the
softmax (for a multi-branch model, whose output is a product of heads, the log of its decoded probabilities).
"""
from __future__ import annotations

from dataclasses import dataclass

from imgcls.errors import UserError

CROP_PCT = 0.875  # timm's default: the crops cover 87.5% of the resized image
MERGES = ("mean", "logits")
DEFAULT_VIEWS = "flip"   # what a bare `imgcls predict --tta` uses


@dataclass(frozen=True)
class TTASpec:
    flip: bool = False
    crops: int = 0                      # 0 (none), 5 or 10
    scales: tuple[float, ...] = (1.0,)
    text: str = "none"

    @property
    def n_views(self) -> int:
        n = len(self.scales) + self.crops
        return n * 2 if self.flip else n

    def view_names(self) -> list[str]:
        names = [f"scale{s:g}" for s in self.scales] + [f"crop{i}" for i in range(self.crops)]
        if self.flip:
            names += [n + "/flip" for n in names]
        return names


def parse_tta(text: str | None) -> TTASpec:
    """'flip+crops', 'scales=0.9,1.0,1.1', 'none' -> TTASpec (a UserError names a bad part)."""
    text = (text or "none").strip()
    if text.lower() in ("", "none", "off", "0"):
        return TTASpec(text="none")
    flip, crops, scales = False, 0, [1.0]
    seen: dict[str, str] = {}        # kind of view -> the part that asked for it: a kind asked twice is refused
    for part in text.split("+"):
        p = part.strip().lower()
        kind = ("crops" if p in ("crops", "five", "fivecrop", "five_crop", "ten", "tencrop", "ten_crop") else
                "scales" if p.startswith("scales=") else p)
        if kind in seen:     # flip+flip was read as one flip, crops+ten as ten, a second scales= replaced the first
            first, again = seen[kind], part.strip()
            one = ("crops (five) or ten (the five and their flips), not both" if kind == "crops" else
                   "one list: scales=" + ",".join(x.split("=", 1)[1] for x in (first, again)) if kind == "scales"
                   else f"{kind} once")
            twice = (f"{again} is given twice" if first.lower() == again.lower() else
                     f"{first} and {again} ask twice for the {kind} views")
            raise UserError(f"--tta {text}: {twice}; give {one}")
        seen[kind] = part.strip()
        if p == "flip":
            flip = True
        elif p in ("crops", "five", "fivecrop", "five_crop"):
            crops = max(crops, 5)
        elif p in ("ten", "tencrop", "ten_crop"):
            crops = 10
        elif p.startswith("scales="):
            try:
                scales = [float(x) for x in p.split("=", 1)[1].split(",") if x.strip()]
            except ValueError:
                raise UserError(f"--tta {part}: scales take comma-separated numbers, e.g. scales=0.9,1.0,1.1") from None
            if not scales or any(not 0.25 <= s <= 4 for s in scales):
                raise UserError(f"--tta {part}: each scale must be between 0.25 and 4")
        else:
            raise UserError(f"unknown --tta part '{part}'; use flip, crops (five), ten, scales=0.9,1.0,1.1 "
                            f"joined by '+', or none")
    # the plain view first, then the other scales in the order given (no duplicates)
    ordered = [1.0] + [s for s in dict.fromkeys(scales) if s != 1.0]
    return TTASpec(flip=flip, crops=crops, scales=tuple(ordered), text=text)


class ViewMaker:
    """PIL RGB image -> float tensor [V, 3, S, S] of normalised views, for one checkpoint's preprocessing
    (img_size, resize_mode, interpolation, mean, std, fill: the same as `imgcls.train.data.eval_transform`), after
    the letterbox `imgcls preprocess --size N` gave its training images (meta.letterbox: the image padded to a
    square with preprocess's colour; a no-op on a square test image, e.g. one preprocess already padded)."""

    def __init__(self, meta, spec: TTASpec):
        import torch
        from torchvision.transforms import v2

        from imgcls.model_meta import ModelMeta
        meta = ModelMeta.coerce(meta)
        self.size = meta.img_size
        self.resize_mode = meta.resize_mode
        self.interp = meta.interpolation
        self.fill = list(meta.fill)       # what a smaller scale's border (and pad resizing) is filled with
        self.square = None
        if meta.letterbox is not None:
            from imgcls.train.data import _PadToSquare
            self.square = _PadToSquare(meta.letterbox)
        self.spec = spec
        self.to_image = v2.ToImage()
        self.mean = list(meta.mean)
        self.std = list(meta.std)
        self._torch = torch

    def needed_side(self) -> int:
        """The largest side any view is resized to (a JPEG can be draft-decoded down to it, not below)."""
        return int(round(self.size * max(max(self.spec.scales), 1 / CROP_PCT if self.spec.crops else 1)))

    def draft_sides(self) -> tuple[int, ...]:
        """The JPEG draft sizes views_uint8 wants its image(s) decoded at: the input size S (the plain view, and
        the views no larger: decoded as validation decoded it, imgcls.train.data.load_input_image), then, where a
        crop or a scale > 1 resizes to more than S, needed_side() (their own decode, large enough not to be
        upscaled)."""
        big = self.needed_side()
        return (self.size,) if big <= self.size else (self.size, big)

    def _resized(self, img, side: int):
        """The image at `side` x `side` following the checkpoint's resize mode (as eval_transform does)."""
        from imgcls.train.data import resize_transform
        return resize_transform(side, self.resize_mode, self.interp, self.fill)(img)

    def _fit(self, x):
        """Centre-crop or pad (with the checkpoint's fill colour) a square uint8 tensor to S x S."""
        from torchvision.transforms.v2 import functional as F
        side = x.shape[-1]
        if side > self.size:
            return F.center_crop(x, [self.size, self.size])
        if side < self.size:
            d = self.size - side
            return F.pad(x, [d // 2, d // 2, d - d // 2, d - d // 2], fill=self.fill)
        return x

    def __call__(self, img):
        """Normalised float views [V, 3, S, S]."""
        return self.normalize(self.views_uint8(img))

    def normalize(self, x):
        """uint8 views (any leading dims, on any device) -> normalised float, as eval_transform does."""
        torch = self._torch
        mean = torch.tensor(self.mean, device=x.device).view(3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(3, 1, 1)
        return (x.float() / 255.0 - mean) / std

    def views_uint8(self, img, big=None):
        """uint8 views [V, 3, S, S] (4x less to copy between processes and to the GPU than floats). `img`: the
        image decoded at draft_sides()[0]; `big`: the one decoded at draft_sides()[1], which the views resized to
        more than S are made from (None: `img`, e.g. an image that is no JPEG)."""
        from torchvision.transforms.v2 import functional as F
        torch = self._torch
        x0 = self.to_image(img)
        if self.square is not None:     # every view (flip, crops, scales) is made from the letterboxed image
            x0 = self.square(x0)
        if big is None or big is img:
            x1 = x0
        else:
            x1 = self.to_image(big)
            if self.square is not None:
                x1 = self.square(x1)
        S = self.size
        views = []
        for s in self.spec.scales:
            side = max(8, round(S * s))
            views.append(self._fit(self._resized(x1 if side > S else x0, side)))
        if self.spec.crops:
            big = self._resized(x1, round(S / CROP_PCT))
            views += list(F.five_crop(big, [S, S]) if self.spec.crops == 5 else F.ten_crop(big, [S, S]))
        if self.spec.flip:
            views += [F.horizontal_flip(v) for v in views]
        return torch.stack(views)


def merge_views(outputs, merge: str = "mean", kind: str = "proba"):
    """[N, V, C] per-view outputs -> [N, C] probabilities. `kind`: what `outputs` holds ('proba' or 'logits')."""
    import torch
    if merge not in MERGES:
        raise UserError(f"unknown --tta-merge '{merge}'; use one of: {', '.join(MERGES)}")
    if merge == "mean":
        p = outputs.float().softmax(-1) if kind == "logits" else outputs.float()
        return p.mean(1)
    lg = outputs.float() if kind == "logits" else outputs.float().clamp_min(1e-12).log()
    return torch.softmax(lg.mean(1), -1)
