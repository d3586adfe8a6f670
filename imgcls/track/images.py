"""Images the trackers log: a PNG read as an array, the worst-predicted validation images as one figure, a figure
drawn as an array."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def _rgb_array(source):
    """HWC uint8 RGB array of an image (a path or a file object): the trackers' images are imgcls's own PNGs."""
    from PIL import Image
    with Image.open(source) as im:
        return np.asarray(im.convert("RGB"))


def png_array(path: Path):
    """HWC uint8 RGB array of an image file, or None when it is missing."""
    return _rgb_array(path) if Path(path).is_file() else None


def figure_array(fig):
    """HWC uint8 RGB array of a matplotlib figure (closed afterwards), drawn by imgcls.report as every figure of
    imgcls is (figure_png: the fallback font for characters the fonts lack, or the one line saying they are boxes).
    TensorBoard's add_figure drew the figure itself: class names in no font of the figure's were boxes, without a
    word."""
    from imgcls.report import figure_png
    return _rgb_array(io.BytesIO(figure_png(fig)))


def worst_predictions_figure(preds_csv: Path, n: int = 12, max_pixels: int | None = None):
    """A matplotlib figure of the `n` validation images whose true class got the lowest probability (title: true
    class, top-1 prediction), or None without predictions; `max_pixels`: the run's --max-pixels (None: the
    default). The file is read by rundir.read_validation; a malformed one is left out as a missing one is, said in
    one warning (its line), as the trackers' other failures are: a finished run's tracking goes on without the
    image."""
    from imgcls.console import warn
    from imgcls.errors import UserError
    from imgcls.io import DEFAULT_MAX_PIXELS, ImageReadError, thumbnail
    from imgcls.report import glyph_warnings_held, pyplot
    from imgcls.train.report import worst_predictions
    from imgcls.train.rundir import read_validation
    if not Path(preds_csv).is_file():
        return None
    try:
        preds = read_validation(Path(preds_csv), dtype={"label": str, "pred": str})
    except UserError as e:
        warn(f"{e}; the trackers log no worst-predictions image")
        return None
    worst = worst_predictions(preds, n)
    if worst.empty:
        return None
    plt = pyplot()
    cols = 4
    rows = (len(worst) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), worst.itertuples(index=False)):
        src = Path(r.root, r.path) if getattr(r, "root", "") else Path(r.path)
        try:
            ax.imshow(thumbnail(src, 128, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels))
        except ImageReadError:
            pass
        ax.set_title(f"true {r.label} ({r.p_true:.2f})\n{r.top3.split('  ')[0]}", fontsize=7)
    with glyph_warnings_held():     # a layout pass draws the titles
        fig.tight_layout()
    return fig
