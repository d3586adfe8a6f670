"""`imgcls eda`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgcls.cli.common import (AgeBands, Csv, GroupCol, LabelCol, Layout, MaxPixels, PathCol, Quiet, Seed, Src,
                               Workers, command, default_workers, layout_options)
from imgcls.io import DEFAULT_MAX_PIXELS


@command("eda", epilog="Example: imgcls eda data/raw --out outputs/eda")
def eda(src: Src,
        out: Annotated[Path, typer.Option(help="Output folder.")] = Path("outputs/eda"),
        layout: Layout = "auto", csv: Csv = None, path_col: PathCol = None, label_col: LabelCol = None,
        group_col: GroupCol = None, age_bands: AgeBands = "30,60",
        samples: Annotated[int, typer.Option(help="Sample images per class in the grids.")] = 8,
        seed: Seed = 0, workers: Workers = default_workers(), max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
        quiet: Quiet = False) -> None:
    """Explore a dataset: class counts, size heatmap, sample grids, errors, exact duplicates -> report.html."""
    from imgcls.eda import run_eda
    run_eda(src, out, layout_options(layout, csv, path_col, label_col, group_col, age_bands), seed=seed,
            workers=workers, max_pixels=max_pixels, samples_per_class=samples)
