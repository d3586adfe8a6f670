"""What a training run shows and logs: train.log lines, the run's ETA, the per-epoch table, curves.png."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls.console import console, info, is_quiet
from imgcls.run_names import BEST_BY, metric_column


class RunLog:
    """Lines to <run>/train.log (and to the terminal unless --quiet)."""

    def __init__(self, path: Path | None, echo: bool = True):
        self.path, self.echo = path, echo

    def __call__(self, msg: str, terminal: bool = True, key: str | None = None, every: bool = False):
        """`key`: console.info's, for a line with a changing part (a duration); `every`: console.info's, a line of
        the run's own course (an early stop), said in each of tune's trials."""
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
        if terminal and self.echo:
            info(msg, key=key, every=every)


class RunEta:
    """The whole run's remaining time (this fold's epochs and `later_epochs` of the folds after it), from the
    measured time per training step so far (validation time included, spread over the steps of the epochs it
    followed; later folds assumed as long as this one)."""

    def __init__(self, epochs_left: int, later_epochs: int = 0):
        self.epochs_left, self.t0 = epochs_left + later_epochs, time.monotonic()
        self.done, self.steps_per_epoch, self.in_epoch = 0, 0, 0

    def start_epoch(self, n_steps: int) -> None:
        if self.steps_per_epoch:
            self.epochs_left -= 1
        self.steps_per_epoch, self.in_epoch = n_steps, 0

    def step(self) -> None:
        self.done += 1
        self.in_epoch += 1

    def seconds(self) -> float | None:
        if not self.done:
            return None
        left = self.steps_per_epoch * self.epochs_left - self.in_epoch
        return (time.monotonic() - self.t0) / self.done * max(left, 0)

    def text(self) -> str:
        s = self.seconds()
        if s is None:
            return "-"
        s = int(round(s))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


_COLS = [("epoch", "epoch", "{:d}", 5), ("train_loss", "trn loss", "{:.4f}", 8),
         ("train_acc", "trn acc", "{:.4f}", 7), ("val_loss", "val loss", "{:.4f}", 8),
         ("val_acc", "val acc", "{:.4f}", 7), ("val_macro_f1", "macro-F1", "{:.4f}", 8), ("lr", "lr", "{:.2e}", 8),
         ("epoch_seconds", "sec", "{:.1f}", 7)]


def val_f1_name(attribute: str = "") -> str:
    """'val macro-F1', and of a single-attribute run (ModelMeta.attribute) 'val macro-F1 (mask)': which column's
    classes the score is over, as the start line's '3 classes of mask' says."""
    return "val macro-F1" + (f" ({attribute})" if attribute else "")


class EpochTable:
    """The per-epoch table on the terminal: one rich Table row per epoch (the header with the first), fixed column
    widths so the rows line up and fit 80 columns; `*` marks a new best. Macro precision / recall (and per-head
    scores) are in metrics.csv. `attribute`: a single-attribute run's column (ModelMeta.attribute), named under the
    score column's title ('(mask)'; bare where that does not fit its width: 'age_band'). `metric`: the run's
    --metric, named under the `best` column's title where it is not macro-F1 ('loss', 'acc')."""

    def __init__(self, multi_fold: bool = False, attribute: str = "", metric: str = "macro_f1"):
        self.header = True
        self.attribute = attribute
        title = BEST_BY[metric].title
        self.best_title = f"best\n{title}" if title else "best"

    def _title(self, key: str, title: str, width: int) -> str:
        if key != "val_macro_f1" or not self.attribute:
            return title
        under = f"({self.attribute})"
        return f"{title}\n{under if len(under) <= width else self.attribute}"

    def print(self, row: dict, improved: bool) -> None:
        if is_quiet():
            return
        from rich.table import Table
        t = Table(box=None, show_header=self.header, header_style="bold", padding=(0, 0, 0, 2), pad_edge=False)
        for key, title, _, width in _COLS:      # rich's width includes padding
            t.add_column(self._title(key, title, width), justify="right", width=width + 2, no_wrap=True)
        t.add_column(self.best_title, width=6, no_wrap=True)
        t.add_row(*[fmt.format(row[k]) for k, _, fmt, _ in _COLS], "*" if improved else "")
        console.print(t)
        self.header = False


def _min_span(ax, values: np.ndarray, rel: float = 0.01) -> None:
    """Values that differ, by under `rel` of their size, get a y axis of +-`rel` of it around them, rather than
    matplotlib's zoom onto their last digits (without an offset, 7-digit ticks); equal values keep matplotlib's
    own widening."""
    v = values[np.isfinite(values)]
    if not len(v):
        return
    lo, hi = float(v.min()), float(v.max())
    size = max(abs(lo), abs(hi))
    if 0 < hi - lo < rel * size:
        mid = (lo + hi) / 2
        ax.set_ylim(mid - rel * size, mid + rel * size)


def curves_png(history: list[dict], path: Path, metric: str = "macro_f1") -> None:
    """Loss, accuracy / macro-F1 and the lr by epoch: integer epoch ticks, labelled axes, the best epoch (the one
    the run's --metric `metric` picked) marked."""
    from matplotlib.ticker import MaxNLocator
    from imgcls.metrics import best_epoch_of
    from imgcls.report import pyplot, save_figure
    plt = pyplot()
    h = pd.DataFrame(history)
    f1 = metric_column("macro_f1", h.columns)
    best = int(h.loc[best_epoch_of(h[metric_column(metric, h.columns)], metric), "epoch"])
    by = "" if metric == "macro_f1" else f" by {BEST_BY[metric].label}"
    # fixed margins, not constrained layout or a tight bounding box: each costs the figure another layout pass
    # (~0.2 s of ~0.35 s), drawn after every run; the texts here are short and known
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    fig.subplots_adjust(left=0.055, right=0.99, bottom=0.13, top=0.9, wspace=0.2)
    axes[0].plot(h["epoch"], h["train_loss"], "o-", label="train")
    axes[0].plot(h["epoch"], h["val_loss"], "o-", label="val")
    axes[0].set_title("loss")
    axes[0].set_ylabel("loss")
    axes[0].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))    # a diverging loss keeps short ticks
    axes[1].plot(h["epoch"], h["train_acc"], "o-", label="train accuracy")
    axes[1].plot(h["epoch"], h["val_acc"], "o-", label="val accuracy")
    axes[1].plot(h["epoch"], h[f1], "o-", label="val macro-F1")
    axes[1].set_title(f"accuracy / macro-F1 (best epoch {best}{by}: macro-F1 "
                      f"{h.loc[h['epoch'] == best, f1].iloc[0]:.4f})")
    axes[1].set_ylabel("score")
    axes[2].plot(h["epoch"], h["lr"], "o-", color="tab:gray")
    axes[2].set_title("learning rate (at the epoch's last step)")
    axes[2].set_ylabel("lr")
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    for ax, values in zip(axes, (h[["train_loss", "val_loss"]], h[["train_acc", "val_acc", f1]], h[["lr"]])):
        # no offset ("1e-5+1.5323" over ticks 0.0, 0.2, ...: one epoch whose train and val loss nearly agree): each
        # tick reads as the value itself, on an axis no narrower than 2% of it (not 1.532302, 1.532304, ... cut off
        # by the fixed margins)
        ax.ticklabel_format(axis="y", useOffset=False)
        _min_span(ax, values.to_numpy(float))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))    # one epoch: a tick at 1 alone
        ax.axvline(best, color="tab:red", linestyle=":", linewidth=1, label=f"best epoch {best}{by}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    save_figure(fig, path, tight=False)
