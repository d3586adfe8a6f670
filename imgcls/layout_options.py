"""How a source that is not already a manifest is read: LayoutOptions (the `Input layout` flags of every reading
command) and the layouts it chooses among, with only the standard library and imgcls.options, so a command line is
built without pandas. imgcls.layouts reads the layouts (and re-exports these)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from imgcls.options import int_list, join, option
from imgcls.profile_names import DEFAULT_AGE_BANDS, age_edges

LAYOUTS = ("auto", "manifest", "folder", "csv", "profiles", "unlabeled")
LAYOUT_PANEL = "Input layout"
# --group-col's value that reads no groups: a CSV's (or a manifest's) `group` column of another meaning (a
# super-class) is not taken as what a split keeps on one side
NO_GROUPS = "none"
# the columns a competition CSV's labels are read from without --label-col, the first present
LABEL_COLUMN_GUESSES = ("label", "class", "target")


@dataclass
class LayoutOptions:
    """How to read a source that is not already a manifest (the `Input layout` flags of every reading command)."""
    layout: str = option("auto", panel=LAYOUT_PANEL, choices=LAYOUTS, help="How SRC is organised (auto: detected).")
    csv: str | None = option(None, panel=LAYOUT_PANEL, cli_type=Optional[Path], from_cli=str,
                             help="Competition CSV (e.g. train.csv) with image paths.")
    path_col: str | None = option(None, panel=LAYOUT_PANEL, none="guessed",
                                  help="CSV column holding image paths.")
    label_col: str | None = option(None, panel=LAYOUT_PANEL,
                                   none=f"a column named {', '.join(LABEL_COLUMN_GUESSES[:-1])} or "
                                        f"{LABEL_COLUMN_GUESSES[-1]}",
                                   help="CSV column holding labels.")
    group_col: str | None = option(None, panel=LAYOUT_PANEL, none="a column named group",
                                   help=f"CSV column holding groups (e.g. person id), kept on one side of a split; "
                                        f"'{NO_GROUPS}': no groups, a `group` column (a CSV's or a manifest's) "
                                        f"left unread.")
    age_bands: Sequence[int] = option(factory=lambda: list(DEFAULT_AGE_BANDS), panel=LAYOUT_PANEL, cli_type=str,
                                      to_cli=join, from_cli=int_list("--age-bands"), validator=age_edges("--age-bands"),
                                      help="Age band edges for profile datasets.")
    image_dir: str | None = option(None, panel=LAYOUT_PANEL, cli_type=Optional[Path], from_cli=str,
                                   none="SRC / the CSV's folder",
                                   help="Folder the --csv paths are relative to, e.g. data/train.")
    ext: str | None = option(None, panel=LAYOUT_PANEL, none="try .jpg, .png, .jpeg, .webp, ...",
                             help="Extension for --csv ids that have none, e.g. .jpg.")
