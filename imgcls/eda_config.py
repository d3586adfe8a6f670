"""`imgcls eda`'s options (EdaConfig) and default output folder: only the standard library and imgcls.options, so
building the command line (`imgcls eda --help`) imports no pandas / numpy; imgcls.eda runs the step."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from imgcls.options import option, seed_option

SAMPLES_PER_CLASS = 8
DEFAULT_OUT = "outputs/eda"


@dataclass
class EdaConfig:
    """The options of `imgcls eda` besides paths, layout, --workers and --max-pixels (run_eda's keywords)."""
    samples_per_class: int = option(SAMPLES_PER_CLASS, panel="Report", lo=1, flags=("--samples",),
                                    help="Sample images per class in the grids.")
    test: str | None = option(None, panel="Report", cli_type=Optional[Path], from_cli=str,
                              help="The competition's test images (a folder or manifest, any layout): their sizes, "
                                   "modes and formats beside the training set's, and byte copies of training images.")
    seed: int = seed_option()
