"""`imgcls eda`: class counts, sizes, modes, errors, exact duplicates, sample grids -> PNGs, report.html, summary.json."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from imgcls import links
from imgcls import manifest as mf
from imgcls import profiles
from imgcls import report
from imgcls.console import all_placed, info, interruption_leaves, is_quiet, plural, progress_bar, warn
from imgcls.errors import UserError
from imgcls.fsutil import check_file_name_encoding, check_output_location, check_writable, write_json, write_table
from imgcls.io import DEFAULT_MAX_PIXELS, GREY_MODES, ImageLimits, ImageReadError, thumbnail
from imgcls.layouts import empty_class_folders_read
from imgcls.eda_config import DEFAULT_OUT, SAMPLES_PER_CLASS, EdaConfig
from imgcls.options import PATH, SRC_PATH, check, check_arguments
from imgcls.outputs import EDA_SUMMARY, REPORT_HTML, output_set, refuse_other_output, refuse_users_files, replacing_line
from imgcls.parallel import ParallelOptions, check_workers
from imgcls.pipeline import given_input

CLASSES_PER_GRID = 20
# a sample grid row's title at most this wide: tight_layout found no layout for one of ~4 inches at 7 pt or more (a
# UserWarning), whatever --samples is; ~50-70 characters
SAMPLE_TITLE_INCHES = 3.5


def exact_duplicate_groups(df: pd.DataFrame) -> list[dict]:
    """Groups of readable rows with the same sha256 (imgcls.links' exact pairs), largest first; `cross_class` when
    labels differ. The rows are cut into groups in arrays (links.run_bounds), not by a pandas groupby per group:
    20,000 groups in 100,000 rows take a fraction of a second."""
    i, j = links.exact_pairs(df["sha256"], valid=(df["error"].fillna("") == "").to_numpy())
    linked = np.unique(np.r_[i, j])
    comp = links.components(len(df), i, j)[linked]
    paths, labels = df["path"].to_numpy()[linked], df["label"].to_numpy()[linked]
    sha = df["sha256"].to_numpy()[linked]
    order = np.lexsort((paths.astype(str), comp))          # by group, and within it by path
    comp, paths, labels, sha = comp[order], paths[order], labels[order], sha[order]
    b = links.run_bounds(comp)
    groups = []
    for s, e in zip(b[:-1].tolist(), b[1:].tolist()):
        labs = sorted(set(labels[s:e].tolist()))
        groups.append({"sha256": sha[s], "n": e - s, "labels": labs, "cross_class": len(labs) > 1,
                       "paths": paths[s:e].tolist(), "path_labels": labels[s:e].tolist()})
    groups.sort(key=lambda x: (-x["n"], x["paths"][0]))
    return groups


DUPLICATES_NAME = "exact_duplicates.csv"
# run_eda's plots: one name each, also what a rerun removes when it does not write it (earlier_files)
PLOTS = {"class_counts": "class_counts.png", "sizes": "size_heatmap.png", "aspect": "aspect_ratio.png",
         "attributes": "attributes.png", "test_sizes": "train_test_sizes.png"}
DUPLICATES_SHOWN = 200       # groups in report.html; every one is in DUPLICATES_NAME


def duplicates_table(dups: list[dict]) -> pd.DataFrame:
    """exact_duplicates.csv: every exact-duplicate group, one row per image (report.html lists the first
    DUPLICATES_SHOWN groups): `group` (1 = the largest, report.html's order and numbers), `copies` (the group's
    size), `cross_class`, `label`, `path`, `sha256`."""
    cols = ["group", "copies", "cross_class", "label", "path", "sha256"]
    if not dups:
        return pd.DataFrame(columns=cols)
    n = np.array([g["n"] for g in dups])
    return pd.DataFrame({"group": np.repeat(np.arange(1, len(dups) + 1), n), "copies": np.repeat(n, n),
                         "cross_class": np.repeat([g["cross_class"] for g in dups], n),
                         "label": [x for g in dups for x in g["path_labels"]],
                         "path": [x for g in dups for x in g["paths"]],
                         "sha256": np.repeat([g["sha256"] for g in dups], n)}, columns=cols)


def summarize(df: pd.DataFrame, dups: list[dict] | None = None) -> dict:
    """summary.json's content; `dups`: exact_duplicate_groups(df) when the caller has them already."""
    ok = mf.readable(df)
    counts = ok["label"].value_counts()
    labelled = counts[counts.index != ""]
    dups = exact_duplicate_groups(df) if dups is None else dups
    summary = {
        "n_images": int(len(df)),
        "n_readable": int(len(ok)),
        "n_errors": int(len(df) - len(ok)),
        "n_classes": int(len(labelled)),
        "classes": {k: int(labelled[k]) for k in mf.class_names(labelled.index)},
        "imbalance_ratio": float(labelled.max() / labelled.min()) if len(labelled) else None,
        "exact_duplicate_groups": len(dups),
        "exact_duplicate_images": int(sum(g["n"] - 1 for g in dups)),
        "cross_class_duplicate_groups": int(sum(g["cross_class"] for g in dups)),
        "modes": {str(k): int(v) for k, v in ok["mode"].value_counts().items()},
        "formats": {str(k): int(v) for k, v in ok["format"].value_counts().items()},
        "width": _stats(ok["width"]), "height": _stats(ok["height"]),
        "common_sizes": common_sizes(ok),
        "errors": [{"path": p, "error": e} for p, e in zip(df.loc[df["error"] != "", "path"],
                                                             df.loc[df["error"] != "", "error"])],
    }
    copy = mf.augmented(ok)
    if copy.any():      # preprocess --oversample's output: its copies are no images of the data's own
        orig = ok.loc[~copy, "label"].value_counts()
        orig = orig[orig.index != ""]
        summary["oversampled_copies"] = int(copy.sum())
        summary["originals"] = {k: int(orig.get(k, 0)) for k in summary["classes"]}
        summary["imbalance_ratio_originals"] = float(orig.max() / orig.min()) if len(orig) else None
    if "age" in df.columns:
        summary["attributes"] = {c: {str(k): int(v) for k, v in ok[c].value_counts().sort_index().items()}
                                 for c in ("mask", "gender", "age_band") if c in ok.columns}
    return summary


def profile_meanings(df: pd.DataFrame, edges, classes) -> dict:
    """What a profile dataset's codes mean (summary.json, report.html): `attribute_values` (mask 0 -> wear, ...,
    age_band by `edges`) and, when the labels are the profile formula's under those edges, `class_meanings`
    ('4' -> 'wear, female, 30-59') for the classes present."""
    ok = mf.readable(df)
    names = profiles.value_names(edges)
    out = {"attribute_values": {c: {str(i): v for i, v in enumerate(names[c])}
                                for c in profiles.PROFILE_HEADS if c in ok.columns}}
    if set(profiles.PROFILE_HEADS) <= set(ok.columns) and len(ok) and \
            profiles.bands_of_labels(ok["mask"], ok["gender"], ok["age_band"], ok["label"]) == len(tuple(edges)) + 1:
        meanings = profiles.class_meanings(edges)
        out["class_meanings"] = {c: meanings[c] for c in classes if c in meanings}
    return out


COMMON_SIZES = 5


def common_sizes(ok: pd.DataFrame, k: int = COMMON_SIZES) -> list[dict]:
    """The `k` most frequent (width, height) of the readable rows `ok`, most frequent first (ties: smaller width,
    then height): [{"width", "height", "images"}, ...]. A competition set is often all one size (28 x 28, 384 x
    512): the one line a person wants from the sizes."""
    wh = pd.DataFrame({"width": pd.to_numeric(ok["width"], errors="coerce"),
                       "height": pd.to_numeric(ok["height"], errors="coerce")}).dropna()
    if wh.empty:
        return []
    n = wh.astype(int).value_counts().rename("images").reset_index()
    n = n.sort_values(["images", "width", "height"], ascending=[False, True, True], kind="stable").head(k)
    return [{"width": int(r.width), "height": int(r.height), "images": int(r.images)} for r in n.itertuples()]


def size_cells(w: np.ndarray, h: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.histogram2d of widths x heights over whole pixels: on an axis spanning fewer pixels than `bins`, each bin
    is one pixel [v - 0.5, v + 0.5), so a size sits at the centre of its cell under its own tick, and the data sit
    in the middle of the frame (one size is one cell in the middle, not a sliver of a 1-pixel range); wider axes
    take `bins` equal bins from min - 0.5 to max + 0.5."""
    def edges(v: np.ndarray) -> np.ndarray:
        lo, hi = int(v.min()), int(v.max()) + 1
        if hi - lo < bins:
            lo -= (bins - (hi - lo)) // 2
            return np.arange(lo, lo + bins + 1, dtype=float) - 0.5
        return np.linspace(lo - 0.5, hi - 0.5, bins + 1)
    return np.histogram2d(w, h, bins=[edges(w), edges(h)])


def _stats(s: pd.Series) -> dict:
    v = pd.to_numeric(s, errors="coerce").dropna()
    if v.empty:
        return {}
    return {"min": int(v.min()), "median": float(v.median()), "max": int(v.max())}


def _min_median_max(stats: dict) -> str:
    """'15 / 171 / 256' from _stats: a whole median as the integer beside min and max (not 171.0); a median between
    two sizes keeps its half (170.5)."""
    return " / ".join(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in stats.values())


# --------------------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------------------

def ratio_text(ratio: float) -> str:
    """An imbalance ratio as the screen, report.html and the class-count figure show it: 3 significant digits,
    never an exponent (1.57, 15.0, 123, 2346); summary.json keeps the full number. The decimals follow the ratio
    as rounded to 3 digits: 9.996 is '10.0', not '10.00'."""
    return f"{ratio:.{max(0, 2 - math.floor(math.log10(float(f'{ratio:.3g}'))))}f}"


def imbalance_text(ratio: float | None, n_classes: int) -> str:
    """An imbalance ratio as the screen and report.html show it (ratio_text), or why there is none: '-' without
    labelled images, '- (1 class)' for one class, as the class-count figure says it (its max/min = 1.00 of the class
    with itself read as a balanced set); summary.json keeps the number."""
    if not ratio or not n_classes:
        return "-"
    return "- (1 class)" if n_classes == 1 else ratio_text(ratio)


def _n_originals(summary: dict) -> int:
    """The classes the oversampled set's originals hold (imbalance_ratio_originals' classes)."""
    return sum(1 for v in summary.get("originals", {}).values() if v)


def plot_class_counts(summary: dict, path: Path) -> Path:
    plt = report.pyplot()
    items = sorted(summary["classes"].items(), key=lambda kv: -kv[1])
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(items) + 2), 4.5))
    names, vals = profiles.class_titles([k for k, _ in items], summary.get("class_meanings")), [v for _, v in items]
    bars = ax.bar(range(len(vals)), vals, color="#4c72b0")
    ax.bar_label(bars, labels=[str(v) for v in vals], fontsize=7, padding=2)
    short = max((len(str(n)) for n in names), default=0) <= 3      # digits, letters: upright, not slanted
    ax.set_xticks(range(len(names)), report.tick_labels(names, 8), rotation=0 if short else 60,
                  ha="center" if short else "right", fontsize=8)
    ratio = summary.get("imbalance_ratio")
    copies = (f", incl. {summary['oversampled_copies']} oversampled copies" if summary.get("oversampled_copies")
              else "")
    # one class: no ratio to speak of (max/min = 1.00 of a class with itself)
    ax.set_title(f"images per class ({len(items)} classes, max/min = {ratio_text(ratio)}{copies})"
                 if ratio and len(items) > 1 else f"images per class ({plural(len(items), 'class')}{copies})"
                 if items else f"images per class{copies}")
    ax.set_ylabel("images")
    return report.save_figure(fig, path)


# from this max/min of the classes' counts, a before / after figure's count axis is logarithmic: on a linear one a
# class of 5 images beside one of 2,000 drew no bar to see
LOG_COUNTS_RATIO = 20


def plot_counts_before_after(counts: pd.DataFrame, title: str, after: str = "kept"):
    """A figure of each class's images before and after a step (counts: label, before, after; in the order drawn,
    top to bottom): a pale bar of the images before, the kept ones over it, and "kept of before" at its end. The
    classes as rows, so 17+ long names read level; the count axis logarithmic where the counts span
    LOG_COUNTS_RATIO or more. Returns the figure (embedded by its report: report.figure_data_uri)."""
    plt = report.pyplot()
    n = len(counts)
    before, kept = counts["before"].to_numpy(), counts["after"].to_numpy()
    fig, ax = plt.subplots(figsize=(8, 0.3 * n + 1.3))
    y = np.arange(n)
    ax.barh(y, before, 0.8, color="#c9d3e3", label="before")
    ax.barh(y, kept, 0.45, color="#4c72b0", label=after)
    positive = before[before > 0]
    log = len(positive) and positive.max() / positive.min() >= LOG_COUNTS_RATIO
    for k in range(n):
        ax.annotate(f"{kept[k]} of {before[k]}", (max(before[k], 1), y[k]), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(0.8, max(positive.max(), 1) * 4)       # room for the counts beyond the longest bar
        from matplotlib.ticker import FuncFormatter       # 1, 10, 100 as counts, not 10^0, 10^1, 10^2
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    else:
        ax.set_xlim(0, max(int(before.max(initial=0)), 1) * 1.25)
    ax.set_yticks(y, report.tick_labels(counts["label"], 8), fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)          # the first row on top
    ax.set_xlabel("images (log scale)" if log else "images")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_size_heatmap(df: pd.DataFrame, path: Path) -> Path:
    from matplotlib.colors import LogNorm
    plt = report.pyplot()
    ok = mf.readable(df)
    w = pd.to_numeric(ok["width"], errors="coerce").to_numpy(float)
    h = pd.to_numeric(ok["height"], errors="coerce").to_numpy(float)
    keep = ~(np.isnan(w) | np.isnan(h))
    w, h = w[keep], h[keep]
    fig, ax = plt.subplots(figsize=(6, 5))
    title = "image size (width x height)"
    if len(w):
        hist, xe, ye = size_cells(w, h, min(40, max(5, int(np.sqrt(len(w))))))
        viridis = plt.get_cmap("viridis")
        cmap = viridis.with_extremes(bad="#eeeeee")         # an empty cell: light grey, not the colour of 1 image
        im = ax.imshow(np.ma.masked_equal(hist.T, 0), origin="lower", aspect="auto", cmap=cmap,
                       norm=LogNorm(vmin=1, vmax=max(2.0, hist.max())), extent=[xe[0], xe[-1], ye[0], ye[-1]])
        fig.colorbar(im, ax=ax, label="images (log scale)")
        top = common_sizes(ok, 3)
        title += "\nmost common: " + ", ".join(
            f"{s['width']}x{s['height']} ({s['images'] / len(w):.0%})" if s["images"] >= 0.01 * len(w)
            else f"{s['width']}x{s['height']} (<1%)" for s in top)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title(title, fontsize=10)
    return report.save_figure(fig, path)


def _log2_aspects(ok: pd.DataFrame) -> np.ndarray:
    """log2(width / height) of each readable row with both sizes (0 = square)."""
    ar = (pd.to_numeric(ok["width"], errors="coerce") / pd.to_numeric(ok["height"], errors="coerce")).dropna()
    return np.log2(ar.to_numpy(float))


def plot_aspect_ratio(df: pd.DataFrame, path: Path) -> Path:
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(_log2_aspects(mf.readable(df)), bins=40, color="#55a868")
    ax.set_xlabel("log2(width / height)   (0 = square)")
    ax.set_ylabel("images")
    ax.set_title("aspect ratio")
    return report.save_figure(fig, path)


def plot_attributes(df: pd.DataFrame, path: Path, age_edges) -> Path:
    plt = report.pyplot()
    ok = mf.readable(df)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, col, names in ((axes[0], "mask", profiles.MASK_CLASSES), (axes[1], "gender", profiles.GENDER_CLASSES)):
        counts = ok[col].astype(int).value_counts().reindex(range(len(names)), fill_value=0)
        bars = ax.bar(names, counts.values, color="#8172b2")
        ax.bar_label(bars, fontsize=8)
        ax.set_ylabel("images")         # each of a person's images, not people as the age histogram beside
        ax.set_title(col)
    # one age per person: the group (person id) read in Unicode's composed form (mf.nfc_classes, as split reads it),
    # so a person spelled NFD in some rows (a macOS zip's) and NFC in others is counted once; df keeps its spellings.
    # A row without a group ('': a competition CSV given without --group-col) is its own person.
    group = mf.nfc_classes(ok["group"]) if "group" in ok else pd.Series("", index=ok.index)
    known = group != ""
    ages = pd.concat([ok.loc[known].assign(group=group[known]).drop_duplicates("group")["age"],
                      ok.loc[~known, "age"]]).astype(int)
    axes[2].hist(ages, bins=range(int(ages.min()), int(ages.max()) + 2) if len(ages) else 10, color="#c44e52")
    axes[2].yaxis.get_major_locator().set_params(integer=True)     # counts of people: no tick at 0.5
    axes[2].set_ylabel("profiles" if known.any() else "images")
    for e in age_edges:
        axes[2].axvline(e, color="k", linestyle="--", linewidth=1)
    axes[2].set_title(f"age per {'profile' if known.any() else 'image'} (band edges {', '.join(map(str, age_edges))})")
    return report.save_figure(fig, path)


def plot_sample_grids(df: pd.DataFrame, out: Path, seed: int, per_class: int = SAMPLES_PER_CLASS,
                      max_pixels: int | None = DEFAULT_MAX_PIXELS, meanings: dict | None = None) -> list[Path]:
    """Per-class random samples (seeded), one row per class, CLASSES_PER_GRID classes per PNG; a class titled
    with its meaning where `meanings` (summary.json's class_meanings) has one."""
    plt = report.pyplot()
    ok = mf.readable(df)
    classes = mf.class_names(ok["label"]) or [""]
    rng = np.random.default_rng(seed)
    paths = []
    pages = [classes[i:i + CLASSES_PER_GRID] for i in range(0, len(classes), CLASSES_PER_GRID)]
    with progress_bar("sample grids (classes)", len(classes)) as advance:      # a row per class, not a page
        for page_no, names in enumerate(pages):
            fig, axes = plt.subplots(len(names), per_class, figsize=(per_class * 1.3, len(names) * 1.45),
                                     squeeze=False)
            for r, name in enumerate(names):
                rows = ok[ok["label"] == name]
                pick = rng.choice(len(rows), size=min(per_class, len(rows)), replace=False) if len(rows) else []
                for c in range(per_class):
                    ax = axes[r][c]
                    ax.axis("off")
                    if c < len(pick):
                        row = rows.iloc[int(pick[c])]
                        try:
                            ax.imshow(thumbnail(Path(row["root"], row["path"]), 96, max_pixels=max_pixels))
                        except ImageReadError:
                            pass
                    if c == 0:
                        # the image at its cell's left edge: a portrait one, centred, moved the title right of
                        # the other rows'
                        ax.set_anchor("W")
                        title = profiles.class_titles([name], meanings)[0] if name else "(unlabeled)"
                        count = f": {len(rows)}" if title != name else f" ({len(rows)})"
                        # a long name cut with an ellipsis (tight_layout found no layout for a wider title, and warned)
                        ax.set_title(report.fit_text(title, SAMPLE_TITLE_INCHES, 7, count),
                                     fontsize=7, loc="left")
                advance()
            with report.glyph_warnings_held():      # a layout pass draws the titles (save_figure says the boxes)
                fig.tight_layout()
            name = "samples.png" if len(pages) == 1 else f"samples_{page_no + 1}.png"
            paths.append(report.save_figure(fig, out / name, dpi=90))
    return paths


# --------------------------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------------------------

def run_eda(src: str | os.PathLike | None = None, out: str | os.PathLike = DEFAULT_OUT,
            opts: mf.LayoutOptions | None = None,
            seed: int = EdaConfig.seed, workers: int = ParallelOptions.workers,
            max_pixels: int = DEFAULT_MAX_PIXELS,
            samples_per_class: int = EdaConfig.samples_per_class, test: str | os.PathLike | None = EdaConfig.test
            ) -> dict:
    """Scan a dataset and write plots, report.html, summary.json and the scanned manifest.csv under `out`; returns
    the summary (summary.json's dict: n_images, classes, imbalance_ratio, exact_duplicate_groups,
    exact_duplicate_images, cross_class_duplicate_groups, ...), of the rows later steps use: clean's keep=false rows
    are left out of every number and plot, their count is `set_aside_by_clean` (manifest.csv keeps every row).
    `test`: the competition's test images, compared with the dataset (compare_test; summary["test"]). `src` None:
    refused as a bare `imgcls eda` is, naming what to give (pipeline.given_input)."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("run_eda", opts=(opts, mf.LayoutOptions), src=(src, PATH, SRC_PATH),
                    out=(out, PATH, "a path to a folder"))
    check(EdaConfig(samples_per_class=samples_per_class, seed=seed, test=None if test is None else str(test)))
    check_workers(workers)
    check(ImageLimits(max_pixels))
    src = given_input("eda", src)
    opts = opts or mf.LayoutOptions()
    out = Path(out)
    check_writable(out)
    refuse_other_output(out, "eda", whole=True)
    if test is not None and not Path(test).exists():     # named as --test, before the data is read
        raise UserError(f"--test {test} does not exist; give the competition's test images (a folder or a CSV / "
                        f"manifest listing them)")
    # files not there: listed in the report (none there: refused by the scan); a CSV's `group` column not said (eda
    # splits nothing)
    df = mf.load(src, opts, scan=False, require_found=False, groups_matter=False)
    layout = mf.layout_read(df)
    if not mf.kept(df).all():       # clean's output (or a later step's): counted as split and train use it
        info(set_aside_line(df))
    empty_classes = empty_class_folders_read(df)     # the folder read's (warned of there)
    mf.warn_unlabeled(df, src)
    test_df = mf.load(test, mf.LayoutOptions(), scan=False, require_found=False, groups_matter=False) \
        if test is not None else None
    check_output_location(out, *mf.input_folders(df), *(mf.input_folders(test_df) if test_df is not None else []),
                          images=mf.image_paths(df) + (mf.image_paths(test_df) if test_df is not None else []))
    # then (an input inside --out said first) its files over a user's own of those names in a folder no eda
    # wrote: their report.html, manifest.csv, samples_2.png
    replaced = refuse_users_files(out, "eda", [out / n for n in earlier_files(out)], placing=out / "eda")
    if out / mf.MANIFEST_NAME in replaced:      # a rerun: the images unchanged since are not read again
        df = mf.reuse_scan(df, out / mf.MANIFEST_NAME, out / EDA_SUMMARY)
    # the report lists the unreadable; none readable is refused here, before the test is scanned or a file is
    # written (an earlier run's --out stays whole)
    df = mf.scan_images(df, workers=workers, max_pixels=max_pixels)
    if test_df is not None:
        test_df = mf.scan_images(test_df, workers=workers, max_pixels=max_pixels, require=False)
    if replaced:        # outputs/eda every run (or what a run stopped among its renames placed): say what goes
        info(replacing_line(out, "an earlier eda output"))
    # every number, plot and sample is of the rows later steps use: clean's keep=false rows are counted apart
    # (manifest.csv keeps every row, as read)
    used = df[mf.kept(df)]
    dups = exact_duplicate_groups(used)            # summary.json counts them, report.html lists them
    summary = summarize(used, dups)
    if len(used) < len(df):
        summary["set_aside_by_clean"] = int(len(df) - len(used))
    summary.update(source=str(src), seed=seed, **mf.scan_record())
    if Path(src).is_dir() and layout == "folder":    # read_folder warned of them (under the folder read: data/images)
        summary["empty_class_folders"] = empty_classes
    # the files are written as one set (outputs.output_set), then renamed into place: a run stopped between its
    # plots left new PNGs beside the earlier run's summary.json and report; now it leaves the earlier set whole
    # what a kill -9 of an earlier run left is swept by output_set while this run holds --out (temps: all of it):
    # another eda writing there at once is not a killed one; the earlier run's plots are looked for then too (one
    # that placed its set while this run waited is the earlier one)
    with output_set(out, "eda", earlier=lambda: earlier_files(out), temps=True) as written:
        stage = written.stage
        profile = "age" in used.columns and len(mf.readable(used))
        if profile:             # before the class plots, which name what the class ids mean
            summary.update(profile_meanings(used, opts.age_bands, summary["classes"]))
        plots = {"class_counts": plot_class_counts(summary, stage / PLOTS["class_counts"]) if summary["classes"]
                 else None,
                 "sizes": plot_size_heatmap(used, stage / PLOTS["sizes"]),
                 "aspect": plot_aspect_ratio(used, stage / PLOTS["aspect"])}
        if profile:
            plots["attributes"] = plot_attributes(used, stage / PLOTS["attributes"], opts.age_bands)
        if test_df is not None:
            summary["test"] = compare_test(used, test_df, seed, max_pixels)
            summary["test"]["source"] = str(test)
            plots["test_sizes"] = plot_train_test_sizes(used, test_df, stage / PLOTS["test_sizes"])
            say_test_findings(summary["test"])
        grids = plot_sample_grids(used, stage, seed, samples_per_class, max_pixels,
                                  summary.get("class_meanings")) if len(mf.readable(used)) else []
        write_table(duplicates_table(dups), stage / DUPLICATES_NAME)
        summary["exact_duplicates_file"] = DUPLICATES_NAME
        write_json(stage / EDA_SUMMARY, summary)
        write_report(stage / REPORT_HTML, summary, used, plots, grids, dups)
        mf.write(df, written.beside(mf.MANIFEST_NAME))     # its image roots relative to where it will lie
    with interruption_leaves(all_placed(out)):      # the set is in place: a stop from here on leaves it whole
        if not is_quiet():
            print_summary(summary)
        info(f"eda outputs: {out}/{REPORT_HTML}, {EDA_SUMMARY}, {mf.MANIFEST_NAME}, {DUPLICATES_NAME}, "
             f"{sum(p is not None for p in plots.values()) + len(grids)} PNGs")
    return summary




def set_aside_line(df: pd.DataFrame) -> str:
    """The one line saying how many rows clean set aside (keep=false, mf.kept: the rows split and train skip), by
    its `reason`, that eda counts the rest, and the classes set aside whole (absent from eda's class table, as from
    split's and train's)."""
    aside = ~mf.kept(df)
    why = mf.text_values(df.loc[aside, "reason"]).str.strip() if "reason" in df.columns else pd.Series("")
    reasons = why[why != ""].value_counts()
    said = f": {', '.join(f'{n} {r}' for r, n in reasons.items())}" if len(reasons) else ""
    gone = ""
    if "label" in df.columns:
        labels = mf.text_values(df["label"])
        whole = sorted(set(labels[aside & (labels != "")]) - set(labels[~aside]))
        if whole:
            gone = (f"; {plural(len(whole), 'class', 'classes')} set aside whole (in no class count here): "
                    + ", ".join(whole))
    return (f"clean set aside {int(aside.sum())} of {plural(len(df), 'row')} (keep=false{said}); eda counts the "
            f"{plural(int((~aside).sum()), 'row')} later steps use{gone}")


def earlier_files(out: Path) -> set[str]:
    """The files an earlier eda run may have left in `out` (the set output_set replaces): its fixed files and its
    PNGs; those this run does not write (a sample page of more classes, the class counts of a labelled set,
    attributes.png, train_test_sizes.png of a run with --test) are removed, not left beside this run's files as if
    they were some of them."""
    ours = {f.name for f in out.glob("*.png") if f.name in PLOTS.values() or f.name == "samples.png" or (
        f.name.startswith("samples_") and f.name[len("samples_"):-len(".png")].isdigit())}
    return ours | {mf.MANIFEST_NAME, DUPLICATES_NAME, EDA_SUMMARY, REPORT_HTML}


# --------------------------------------------------------------------------------------------------------------
# The test set beside the training set
# --------------------------------------------------------------------------------------------------------------

SIZE_SHIFT = 1.5          # a median side this many times larger or smaller than the training set's is said
COPIES_SHOWN = 50


def _sides(ok: pd.DataFrame) -> np.ndarray:
    """Each readable image's side sqrt(width x height) in pixels (its scale, whatever its aspect)."""
    w = pd.to_numeric(ok["width"], errors="coerce").to_numpy(float)
    h = pd.to_numeric(ok["height"], errors="coerce").to_numpy(float)
    s = np.sqrt(w * h)
    return s[np.isfinite(s)]


def compare_test(df: pd.DataFrame, test_df: pd.DataFrame, seed: int = 0,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """summary.json's "test": the test images' counts, sizes, modes and formats, the ratio of the training set's
    median side to the test set's (`scale_ratio`: 4.0 = test images a quarter of the training images' side, as in
    the painting competition, whose write-up resized for it), and the test images that are byte copies of training
    images (`copies_of_train`, with the training labels they carry: the label of such a test image is known).
    A shift of modes is measured on the modes as the pixels show them (modes_by_content, `seed` picking the images
    looked at, decoded within `max_pixels`, eda's --max-pixels): greyscale written as RGB (by another tool, or by an
    earlier preprocess) is no colour shift."""
    ok, tok = mf.readable(df), mf.readable(test_df)
    a, b = _sides(ok), _sides(tok)
    ratio = float(np.median(a) / np.median(b)) if len(a) and len(b) and np.median(b) > 0 else None
    # byte copies by links' definition, over the training rows then the test rows: a test row whose group's first
    # row is a training row has that training image's content
    n = len(ok)
    first, later = links.exact_pairs(pd.concat([ok["sha256"], tok["sha256"]], ignore_index=True))
    cross = (first < n) & (later >= n)
    train_row, test_row = first[cross], later[cross] - n
    shas = tok["sha256"].astype(str).to_numpy()[test_row]
    shared = ok[ok["sha256"].isin(shas)]                     # the labels of the shared hashes only (a set of 100k)
    labels = shared.groupby("sha256")["label"].agg(lambda x: ", ".join(sorted(set(map(str, x)))))
    copies = [{"test": str(tok["path"].iat[t]), "train": str(ok["path"].iat[r]), "train labels": labels[h]}
              for t, r, h in zip(test_row, train_row, shas)]
    return {"n_images": int(len(test_df)), "n_readable": int(len(tok)), "n_errors": int(len(test_df) - len(tok)),
            "width": _stats(tok["width"]), "height": _stats(tok["height"]), "common_sizes": common_sizes(tok),
            "median_side": {"train": float(np.median(a)) if len(a) else None,
                            "test": float(np.median(b)) if len(b) else None},
            "scale_ratio": ratio,
            "modes": {str(k): int(v) for k, v in tok["mode"].value_counts().items()},
            "formats": {str(k): int(v) for k, v in tok["format"].value_counts().items()},
            "shifts": {"mode": _share_shifts(ok["mode"], tok["mode"]) and
                               _share_shifts(modes_by_content(ok, seed, max_pixels),
                                             modes_by_content(tok, seed, max_pixels)),
                       "format": _share_shifts(ok["format"], tok["format"])},
            "n_copies_of_train": len(copies), "copies_of_train": copies[:COPIES_SHOWN]}


SHARE_SHIFT = 0.25        # a mode or format whose share of the images differs this much between the sets is said
GREY_SAMPLE = 16          # images of a colour mode decoded to tell whether the mode holds greyscale pictures
GREY_TOLERANCE = 4        # the largest R, G, B spread (of 255) of a grey pixel written as colour (JPEG rounding)


def modes_by_content(ok: pd.DataFrame, seed: int = 0, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> pd.Series:
    """The readable rows' image modes as their pixels show them: a colour mode (RGB, P, ...) whose sampled images
    (GREY_SAMPLE of them, seeded) are all grey, R = G = B within GREY_TOLERANCE, reads as L -- greyscale pictures
    written as colour files (by other tools, or by preprocess before it wrote a grey source 'L'), which show a model
    what an L image shows it. GREY_MODES (imgcls.io's, the modes load_rgb_or_grey keeps grey) are grey unread.
    `max_pixels`: the decoding bound (--max-pixels), the scan's: an image it read is looked at, not left colour."""
    modes = ok["mode"].astype(str).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    paths = mf.image_paths(ok)
    out = modes.copy()
    for mode in sorted(set(modes) - set(GREY_MODES)):
        rows = np.flatnonzero(modes.to_numpy() == mode)
        pick = rng.choice(rows, size=min(GREY_SAMPLE, len(rows)), replace=False)
        if all(_is_grey(paths[i], max_pixels) for i in pick):
            out[rows] = "L"
    return out


def _is_grey(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> bool:
    try:
        arr = np.asarray(thumbnail(path, 64, max_pixels=max_pixels), dtype=np.int16)
    except ImageReadError:
        return False
    return int(np.ptp(arr, axis=2).max(initial=0)) <= GREY_TOLERANCE


def _share_shifts(train: pd.Series, test: pd.Series) -> list[dict]:
    """The values (image modes, file formats) whose share differs by SHARE_SHIFT or more between the sets, e.g. a
    greyscale (L) or JPEG test set for an RGB / PNG training set: [{"value", "train", "test"}] (shares)."""
    if not len(train) or not len(test):
        return []
    a = train.astype(str).value_counts(normalize=True)
    b = test.astype(str).value_counts(normalize=True)
    out = []
    for v in sorted(set(a.index) | set(b.index)):
        sa, sb = float(a.get(v, 0.0)), float(b.get(v, 0.0))
        if abs(sa - sb) >= SHARE_SHIFT:
            out.append({"value": v, "train": round(sa, 4), "test": round(sb, 4)})
    return out


def findings_on_test(t: dict, listed: str = f"listed in {REPORT_HTML} and {EDA_SUMMARY}") -> list[str]:
    """What compare_test found that changes how to train or predict, one line each (printed and in the report);
    `listed`: where the byte copies are (the report itself says 'listed below')."""
    out = []
    r, med = t["scale_ratio"], t["median_side"]
    if r is not None and (r >= SIZE_SHIFT or r <= 1 / SIZE_SHIFT):
        crops = ""
        if r >= 1:      # the painter write-up's way when the test images are crops of pictures like the training ones
            from imgcls.model_meta import CROP_FROM_RANGE
            n = min(max(round(r), 2), int(CROP_FROM_RANGE[1]))
            crops = (f"; if they are parts of such pictures (the painter write-up's test images: a quarter of a "
                     f"painting), `train --crop-from {n}` trains on crops of images resized to {n}x, at the test's "
                     f"pixel density")
        out.append(f"test images are {r if r >= 1 else 1 / r:.1f}x {'smaller' if r >= 1 else 'larger'} than the "
                   f"training images (median side {med['test']:.0f} px against {med['train']:.0f} px): pick the "
                   f"training resolution (--img-size, preprocess --size) for the test's scale{crops}")
    for what, rows in t["shifts"].items():
        if rows:
            out.append(f"image {what}s differ between the sets: " + ", ".join(
                f"{x['value']} {x['test']:.0%} of test against {x['train']:.0%} of training images" for x in rows)
                + (": train on what the test looks like (e.g. greyscale or JPEG augmentation)" if what == "mode"
                   or any(x["value"] == "JPEG" for x in rows) else ""))
    if t["n_copies_of_train"]:
        out.append(f"{t['n_copies_of_train']} test image(s) are byte copies of training images: their labels are "
                   f"known ({listed})")
    return out


def say_test_findings(t: dict) -> None:
    """One line on the test set, then each finding as a warning (printed even with --quiet)."""
    med = t["median_side"]
    scale = (f", median side {med['test']:.0f} px (training {med['train']:.0f} px)"
             if t["scale_ratio"] is not None else "")
    info(f"test set: {t['n_readable']} readable of {t['n_images']} images{scale}")
    for line in findings_on_test(t):
        warn(line)


def plot_train_test_sizes(df: pd.DataFrame, test_df: pd.DataFrame, path: Path) -> Path:
    """The share of images at each side (log2 bins) and aspect ratio, training set against test set (each set's
    images in the legend: the shares are of them)."""
    plt = report.pyplot()
    from matplotlib.ticker import ScalarFormatter
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    ok, tok = mf.readable(df), mf.readable(test_df)
    a, b = _sides(ok), _sides(tok)
    both = np.r_[a, b]
    if len(both):
        lo, hi = np.log2(max(both.min(), 1.0)), np.log2(max(both.max(), 2.0))
        edges = 2 ** np.linspace(lo - 0.05, hi + 0.05, 31)
        for v, name, colour in ((a, "train", "#4c72b0"), (b, "test", "#dd8452")):
            if len(v):
                axes[0].hist(v, bins=edges, weights=np.full(len(v), 1 / len(v)), alpha=0.55,
                             label=f"{name} ({plural(len(v), 'image')})", color=colour)
        axes[0].set_xscale("log", base=2)
        axes[0].xaxis.set_major_formatter(ScalarFormatter())      # 64, 128, ... rather than 2^6, 2^7
        if hi - lo < 1:           # within one octave (all 20 px) no power of two is on the axis: label the sides
            axes[0].set_xticks(np.unique(np.round(both))[:: max(1, len(np.unique(np.round(both))) // 5)])
            axes[0].xaxis.set_minor_formatter(plt.NullFormatter())
    axes[0].set_xlabel("side sqrt(width x height) (px)")
    axes[0].set_ylabel("share of images")
    axes[0].set_title("image scale")
    ars = [_log2_aspects(f) for f in (ok, tok)]
    if sum(len(v) for v in ars):
        edges = np.histogram_bin_edges(np.r_[ars[0], ars[1]], bins=30)     # one set of bins for both sets
        for v, name, colour in zip(ars, ("train", "test"), ("#4c72b0", "#dd8452")):
            if len(v):
                axes[1].hist(v, bins=edges, weights=np.full(len(v), 1 / len(v)), alpha=0.55,
                             label=f"{name} ({plural(len(v), 'image')})", color=colour)
    axes[1].set_xlabel("log2(width / height)   (0 = square)")
    axes[1].set_ylabel("share of images")
    axes[1].set_title("aspect ratio")
    for ax in axes:
        ax.legend(fontsize=8)
    return report.save_figure(fig, path)


def _test_section(t: dict, plot: Path | None) -> str:
    med = t["median_side"]
    rows = [("source", t["source"]), ("images", t["n_images"]), ("readable", t["n_readable"]),
            ("unreadable", t["n_errors"]),
            ("median side train / test (px)", f"{med['train']:.0f} / {med['test']:.0f}" if t["scale_ratio"] else "-"),
            ("train / test scale", f"{t['scale_ratio']:.2f}" if t["scale_ratio"] else "-"),
            ("width min / median / max (px)", _min_median_max(t["width"])),
            ("height min / median / max (px)", _min_median_max(t["height"])),
            ("modes", ", ".join(f"{k} {v}" for k, v in t["modes"].items())),
            ("formats", ", ".join(f"{k} {v}" for k, v in t["formats"].items())),
            ("byte copies of training images", t["n_copies_of_train"])]
    found = findings_on_test(t, listed="listed below")
    return ("".join(report.note(line) for line in found) + report.key_values(rows)
            + (report.img(plot, "train and test sizes") if plot else "")
            + report.heading("most common test sizes") + report.table(t["common_sizes"], ["width", "height", "images"])
            + report.heading(f"test images that are byte copies of training images ({t['n_copies_of_train']}"
                             f"{'; the first ' + str(COPIES_SHOWN) if t['n_copies_of_train'] > COPIES_SHOWN else ''})")
            + report.table(t["copies_of_train"], ["test", "train", "train labels"]))


def write_report(path: Path, summary: dict, df: pd.DataFrame, plots: dict, grids: list[Path],
                 dups: list[dict]) -> Path:
    """report.html; `dups`: exact_duplicate_groups(df), as summarize counted them."""
    overview = report.key_values([
        ("source", summary["source"]), ("images", summary["n_images"]),
        *([("rows set aside by clean (keep=false), not counted here", summary["set_aside_by_clean"])]
          if summary.get("set_aside_by_clean") else []),
        ("readable", summary["n_readable"]),
        ("unreadable", summary["n_errors"]), ("classes", summary["n_classes"]),
        ("imbalance (max/min)", imbalance_text(summary["imbalance_ratio"], summary["n_classes"])),
        *([("of the images, oversampled copies (augmented_from)", summary["oversampled_copies"]),
           ("imbalance (max/min) of the originals",
            imbalance_text(summary["imbalance_ratio_originals"], _n_originals(summary)))]
          if summary.get("oversampled_copies") else []),
        ("exact-duplicate groups", summary["exact_duplicate_groups"]),
        ("images that are extra copies", summary["exact_duplicate_images"]),
        ("groups spanning classes", summary["cross_class_duplicate_groups"]),
        ("width min / median / max (px)", _min_median_max(summary["width"])),
        ("height min / median / max (px)", _min_median_max(summary["height"])),
        *([("class folders without images", ", ".join(summary["empty_class_folders"]))]
          if summary.get("empty_class_folders") else []),
    ])
    counts = pd.DataFrame(sorted(summary["classes"].items(), key=lambda kv: -kv[1]), columns=["class", "images"])
    if summary.get("class_meanings"):          # a profile dataset's class ids say nothing by themselves
        counts.insert(1, "meaning", [summary["class_meanings"].get(c, "") for c in counts["class"]])
    sections = [("Overview", overview)]
    if plots.get("class_counts"):
        sections.append(("Classes", report.img(plots["class_counts"], "class counts") + report.table(counts)))
    if plots.get("attributes"):
        names = summary.get("attribute_values", {})
        attrs = "".join(report.heading(k) + report.table(pd.DataFrame(
            [(value, names.get(k, {}).get(value, ""), n) for value, n in v.items()], columns=[k, "meaning", "images"]))
            for k, v in summary.get("attributes", {}).items())
        sections.append(("Attributes (profile dataset)", report.img(plots["attributes"], "attributes") + attrs))
    sections += [
        ("Image sizes", report.img(plots["sizes"], "size heatmap") + report.img(plots["aspect"], "aspect")
         + report.heading("most common sizes") + report.table(summary["common_sizes"], ["width", "height", "images"])),
        *([("Test set beside the training set", _test_section(summary["test"], plots.get("test_sizes")))]
          if "test" in summary else []),
        ("Samples (random, seeded)", "".join(report.img(g, "samples") for g in grids)),
        ("Modes and formats", report.table(pd.DataFrame(list(summary["modes"].items()), columns=["mode", "images"]))
         + report.table(pd.DataFrame(list(summary["formats"].items()), columns=["format", "images"]))),
        (f"Unreadable files ({summary['n_errors']})", report.table(summary["errors"], ["path", "error"])),
        (f"Exact duplicates ({summary['exact_duplicate_groups']} groups)",
         report.table([{"group": k, "copies": g["n"], "classes": ", ".join(g["labels"]),
                        "across classes": "yes" if g["cross_class"] else "", "paths": " | ".join(g["paths"][:6])
                        + (" ..." if g["n"] > 6 else "")}
                       for k, g in enumerate(dups, 1)], max_rows=DUPLICATES_SHOWN,
                      unit="groups", rest=f"every group, one row per image, is in {DUPLICATES_NAME}")),
    ]
    return report.write_page(path, "imgcls eda report", sections)


def print_summary(summary: dict) -> None:
    from rich.table import Table
    from imgcls.console import print_table
    meanings = summary.get("class_meanings")        # a profile dataset's class ids say nothing by themselves
    t = Table(title="dataset summary", show_header=True, header_style="bold")
    t.add_column("class")
    if meanings:
        t.add_column("meaning")
    t.add_column("images", justify="right")

    def row(name: str, value: str, meaning: str = "", **kw) -> None:
        t.add_row(name, *([meaning] if meanings else []), value, **kw)
    for k, v in sorted(summary["classes"].items(), key=lambda kv: -kv[1]):
        row(k, str(v), (meanings or {}).get(k, ""))
    t.add_section()
    row("total readable", str(summary["n_readable"]), style="bold")
    if summary.get("set_aside_by_clean"):
        row("set aside by clean (keep=false)", str(summary["set_aside_by_clean"]))
    if summary.get("oversampled_copies"):
        row("of them oversampled copies (augmented_from)", str(summary["oversampled_copies"]))
    row("unreadable", str(summary["n_errors"]))
    row("exact-duplicate groups", str(summary["exact_duplicate_groups"]))
    if summary["imbalance_ratio"]:
        row("imbalance max/min", imbalance_text(summary["imbalance_ratio"], summary["n_classes"]))
    if summary.get("imbalance_ratio_originals"):
        row("imbalance max/min, originals", imbalance_text(summary["imbalance_ratio_originals"],
                                                           _n_originals(summary)))
    print_table(t)
