"""The declarations of how images are opened and resized -- the --max-pixels bound (ImageLimits,
max_pixels_option), the resize modes and filters -- with only the standard library and imgcls.options, so a command
line is built without PIL or numpy. imgcls.io, the only place images are opened, applies them (and re-exports them).
"""
from __future__ import annotations

from dataclasses import dataclass

from imgcls.options import check, option

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own default bomb limit (~ 9459 x 9459)
# How an image becomes N x N, one vocabulary for preprocess (on disk, PIL) and train / predict (torchvision): squash
# ignores the aspect ratio (timm's crop_mode calls it squash too), crop covers N x N and cuts the centre, pad fits the
# longer side and letterboxes.
RESIZE_MODES = ("squash", "crop", "pad")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")     # the resize filter (train --interpolation)
DEFAULT_BACKGROUND = (255, 255, 255)   # what transparency is flattened on, and a letterbox filled with, by default


def max_pixels_option(default: int | None = DEFAULT_MAX_PIXELS, none: str | None = None, help: str = ""):
    """The --max-pixels declaration of every command that opens images; 0: no limit (what PIL's None is, which a
    command line cannot type: a Python caller's None is refused naming it). `default` None (with `none`, what it
    means, and `help`, what it adds): a step whose limit comes from elsewhere when the flag is not given (predict:
    the run's)."""
    spec = {"none": none} if none else {}
    return option(default, panel="Runtime", lo=0, off=(0, "no limit"), **spec,
                  help="Images with more pixels are reported and skipped" +
                       (f" (0: no limit); {help}" if help else " (PIL's bomb limit by default; 0: no limit)."))


@dataclass
class ImageLimits:
    """--max-pixels of a command whose config has no such field."""
    max_pixels: int = max_pixels_option()

    def validate(self) -> None:
        check(self)
