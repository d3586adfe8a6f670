"""`imgcls split`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import (AgeBands, Csv, Ext, ImageDir,
                               Device, LabelCol, Layout, MaxPixels, OptSrc, PathCol, Quiet, Seed,
                               Workers, command, default_workers, layout_options, parse_int_list)
from imgcls.errors import UserError

EPILOG = """Examples:

  imgcls split data/processed --val 0.2   # train/val, grouped by person, stratified by label

  imgcls split data/clean --folds 5 --test 0.2 --stratify mask,gender,age_band

  imgcls split data/raw --val 0.2 --test 0.2   # seed 001's 6:2:2 per class

  imgcls split data/raw --drop-ages 57-59 --relabel-age 29,59   # seed 003 / seed 004 label tricks

  imgcls split --check data/splits.csv --fix   # repair a contaminated split"""


@command("split", epilog=EPILOG)
def split(src: OptSrc = None,
          out: Annotated[Optional[Path], typer.Option(
              help="Output table (manifest + split, fold, drop_reason); reports are written beside it. "
                   "Default data/splits.csv; with --check --fix, the checked file.", show_default=False)] = None,
          group_col: Annotated[str, typer.Option(
              help="Column whose rows never cross splits or folds (e.g. the person).")] = "group",
          stratify: Annotated[str, typer.Option(
              help="Column(s) to stratify on, comma-separated (e.g. mask,gender,age_band), or 'none'.")] = "label",
          val: Annotated[Optional[float], typer.Option(
              help="Validation fraction (default 0.2; with --folds K each fold validates 1/K).",
              show_default=False)] = None,
          test: Annotated[float, typer.Option(help="Test fraction held out before val / folds.")] = 0.0,
          folds: Annotated[Optional[int], typer.Option(
              help="K-fold: adds `fold` (0..K-1, the fold where the row is validation).", show_default=False)] = None,
          age_bands: AgeBands = "30,60",
          drop_ages: Annotated[Optional[str], typer.Option(
              help="Leave out profiles of these ages, e.g. 57-59 (rows stay, split='' with a reason).",
              show_default=False)] = None,
          relabel_age: Annotated[Optional[str], typer.Option(
              help="Edges used to put ages into the --age-bands classes, e.g. 29,59.", show_default=False)] = None,
          near_dup: Annotated[bool, typer.Option(
              "--near-dup/--no-near-dup", help="Keep near duplicates (clean's definition) on one side, and check.")
          ] = True,
          dup_method: Annotated[str, typer.Option(
              help="Near-duplicate definition, as clean's: verified (embedding candidates checked pixel by pixel "
                   "on aligned thumbnails) or embedding (cosine alone).")] = "verified",
          dup_threshold: Annotated[Optional[float], typer.Option(
              help="Score at or above which two images are near duplicates: verified correlation (default 0.98) "
                   "or embedding cosine (default 0.90).", show_default=False)] = None,
          model: Annotated[str, typer.Option(help="Embedding model of the near-duplicate search.")
                           ] = "tf_efficientnet_lite0",
          device: Device = "auto",
          cache_dir: Annotated[Optional[Path], typer.Option(help="Embedding cache folder (shared with clean).",
                                                            show_default=False)] = None,
          tolerance: Annotated[float, typer.Option(
              help="Warn when a class's share of a part is further than this from its target.")] = 0.05,
          check: Annotated[Optional[Path], typer.Option(
              help="Only check this split file for leaks (exit 1 if contaminated).", show_default=False)] = None,
          fix: Annotated[bool, typer.Option(help="With --check: move each leaking group wholly to one side.")
                         ] = False,
          allow_leaks: Annotated[bool, typer.Option(help="Write / accept a contaminated split (exit 0).")] = False,
          layout: Layout = "auto", csv: Csv = None, path_col: PathCol = None, label_col: LabelCol = None,
          image_dir: ImageDir = None, ext: Ext = None,
          seed: Seed = 0, workers: Workers = default_workers(), max_pixels: MaxPixels = 89_478_485,
          quiet: Quiet = False) -> None:
    """Split a dataset into train / val / test or k folds without leaks: groups (people), exact and near
    duplicates never cross sides; stratified by label or attributes; per-split distribution report."""
    from imgcls import split as sp

    if folds is not None and val is not None:
        raise UserError("--val and --folds exclude each other: with --folds K each fold validates 1/K of the rows")
    strat = () if stratify.strip().lower() == "none" else tuple(c.strip() for c in stratify.split(",") if c.strip())
    cfg = sp.SplitConfig(val=0.2 if val is None else val, test=test, folds=folds, group_col=group_col,
                         stratify=strat, seed=seed, age_bands=parse_int_list(age_bands, "--age-bands"),
                         drop_ages=sp.parse_ages(drop_ages),
                         relabel_age=parse_int_list(relabel_age, "--relabel-age") if relabel_age else None,
                         near_dup=near_dup, dup_method=dup_method, dup_threshold=dup_threshold, model=model,
                         device=device, cache_dir=str(cache_dir) if cache_dir else None, tolerance=tolerance,
                         allow_leaks=allow_leaks)
    if check is not None:
        if src is not None:
            raise UserError("--check FILE checks an existing split; give either SRC or --check, not both")
        sp.run_check(check, out, cfg, fix=fix, workers=workers)
        return
    if fix:
        raise UserError("--fix goes with --check FILE (a new split never has leaks: linked images are kept together)")
    if src is None:
        from imgcls.pipeline import default_input
        src = default_input("split")
    opts = layout_options(layout, csv, path_col, label_col, group_col if group_col != "group" else None,
                          age_bands, image_dir, ext)
    sp.run_split(src, out or Path("data/splits.csv"), opts, cfg, workers=workers, max_pixels=max_pixels)
