"""The names of the figure files the steps draw into their folders: only the standard library, so
imgcls.train.rundir (which lists what a run writes, without drawing) and the modules that draw or show the figures
(imgcls.metrics, imgcls.train.report, the trackers) read one spelling."""
from __future__ import annotations

CURVES_PNG = "curves.png"        # a run's training curves (imgcls.train.progress.curves_png)
CONFUSION_STEM = "confusion_matrix"     # a run's confusion matrices: <stem>.png, <stem>_normalized.png


def confusion_png_names(stem: str = CONFUSION_STEM) -> tuple[str, str]:
    """The files metrics.confusion_pngs writes: <stem>.png (counts) and <stem>_normalized.png."""
    return f"{stem}.png", f"{stem}_normalized.png"


def not_drawn(instead: str) -> str:
    """The line a step's report.html shows where --no-plots left out its figures: `instead`, what holds their
    numbers (train's, tune's and predict's reports)."""
    return f"figures not drawn (--no-plots): {instead}"


# the figures train draws into a run folder (and a k-fold set's, from its out-of-fold predictions)
RUN_FIGURES = (CURVES_PNG, *confusion_png_names())
