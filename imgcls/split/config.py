"""split's options (SplitConfig: defaults, choices, ranges, --help panels), its part names, and the error a
contaminated split raises."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from imgcls.device import device_option
from imgcls.errors import UserError
from imgcls.image_options import max_pixels_option
from imgcls.link_options import (CACHE_DIR_NONE, DEFAULT_EMBEDDER, dup_candidates_option, dup_method_option,
                                 dup_threshold_option, embed_precision_option)
from imgcls.options import (check, cli_fields, flag, int_list, join, list_items, option, python_too, seed_option, specs,
                            typed_text)
from imgcls.profile_names import DEFAULT_AGE_BANDS, PROFILE_HEADS, age_edges

if TYPE_CHECKING:
    from imgcls.links import NearDuplicates

SPLITS = ("train", "val", "test")
NEW_SPLIT = python_too("`imgcls split SRC`", "run_split(SRC)")     # the fix of a table to split afresh, both callers
SPLIT_FIRST = python_too("`imgcls split`", "run_split()")     # the pipeline's data split (its splits.csv), both callers
MAX_DENOMINATOR = 20                  # --val / --test resolution: 1/20 = 5 %
LINK_COLUMNS = ("sha256", "source_path", "dup_group")   # besides the group column
PROFILE_ATTRIBUTES = PROFILE_HEADS      # stratified on and reported for profile datasets
RELABEL_EXAMPLE = "29,59"       # --relabel-age's example, its parser's and its check's alike (seed 004's edges)
PROFILE_OPTIONS = ("age_bands", "drop_ages", "relabel_age")   # act on profile datasets only


def check_split_values(df, where) -> None:
    """A table's `split` column (a hand-made split, or split's own) holds train / val / test, in any case (as train
    and predict read it), or nothing (a row left out); in a k-fold table (a `fold` column holding a fold) each train
    / val row names its fold. Anything else is one line naming a row and the fix, the file and its line first
    (layouts.row_at; `where` names a table not read from a file): another tool's 'valid' read as no validation rows
    sent them into train's random draw, and a train row with an empty fold was 'train (every fold)' to --check but
    trained in no fold."""
    from imgcls.manifest import text_values
    if "split" not in df.columns:
        return
    values = text_values(df["split"])
    split = values.str.lower()          # as written, as read (split_values' reading)
    bad = ~split.isin(SPLITS + ("",))
    if not bad.any():
        _check_fold_values(df, split, where)
        return
    from imgcls.layouts import SPLIT_FOLDERS, row_at   # the split folders' other names (valid, validation)
    pos = int(bad.to_numpy().nonzero()[0][0])
    value = values.iloc[pos]
    meant = SPLIT_FOLDERS.get(value.strip().lower())
    raise UserError(f"{row_at(df, pos, where)} has '{value}' in its column 'split' ({int(bad.sum())} row(s) like it; "
                    f"accepted: train, val, test in any case, or empty for a row left out); "
                    + (f"write '{meant}' for '{value}'" if meant else "fix the file")
                    + f" or make a new split with {NEW_SPLIT}")


def split_values(df):
    """The `split` column as train, predict and split --check read it: lower-cased ('Train' is train), '' where
    empty; None without the column. The one reading of the column: split_rows, train's sides, predict's parts."""
    from imgcls.manifest import text_values
    if "split" not in df.columns:
        return None
    return text_values(df["split"]).str.lower()


def split_rows(df, part: str):
    """The rows of the `split` column that are `part` (train, val, test; a bool array), None where it has none."""
    split = split_values(df)
    return None if split is None else (split == part).to_numpy()


def fold_numbers(df):
    """The `fold` column as numbers (a float64 array: NaN where a row names no fold); None without the column. The
    one reading of the column: has_folds, fold_ids, the fold check, train's fold assignment."""
    import pandas as pd         # the step's, not the command line's
    if "fold" not in df.columns:
        return None
    return pd.to_numeric(df["fold"], errors="coerce").astype("float64").to_numpy()


def has_folds(df) -> bool:
    """Whether df is a k-fold table: a `fold` column holding a fold. An empty one (a holdout CSV exported with the
    column) is none, as train reads it (train.data.fold_ids): its rows are train / val / test, not each 'train
    (every fold)'."""
    import numpy as np
    f = fold_numbers(df)
    return f is not None and bool((~np.isnan(f)).any())


def fold_ids(df) -> list[int]:
    """The folds a k-fold table validates, sorted: its `fold` values >= 0 (-1 trains in every fold), whatever their
    numbering (a hand-made table's may have a gap: 0, 2, 3); train trains these (train.data.fold_ids)."""
    import numpy as np
    f = fold_numbers(df)
    return [] if f is None else sorted(int(k) for k in np.unique(f[~np.isnan(f)]) if k >= 0)


def _check_fold_values(df, split, where) -> None:
    """check_split_values' fold rule: `split` its lowercase values; a row clean did not keep (keep=False, which
    train never reads) is none of them."""
    import numpy as np

    from imgcls.layouts import row_at
    from imgcls.manifest import kept
    if not has_folds(df):
        return
    bad = split.isin(("train", "val")).to_numpy() & np.isnan(fold_numbers(df)) & kept(df)
    if bad.any():
        pos = int(bad.nonzero()[0][0])
        raise UserError(f"{row_at(df, pos, where)} has split '{split.iloc[pos]}' and an empty fold ({int(bad.sum())} "
                        f"row(s) like it) in a k-fold table: write its fold (0..K-1, or -1 to train it in every "
                        f"fold), or empty its split to leave it out, or make a new split with {NEW_SPLIT}")


def recorded_config(file) -> dict:
    """The settings the split of `file` recorded (the config of the summary beside it; {} where none), read once by
    `--check FILE --fix` (split.run): the shares it asked for (_recorded_shares), its stratify columns (_stratify_of),
    its age bands (_take_recorded_bands), the settings the fixed table's summary keeps (_split_settings), and the
    column it kept together (split.leaks.kept_group_col, train's leak warning's too). Not the val / test an earlier
    --fix recorded as the table's own shares (balance_targets_inferred): none asked for."""
    from imgcls.outputs import read_yaml, split_outputs
    summary = read_yaml(split_outputs(Path(file))["summary"])
    made = summary.get("config")
    made = dict(made) if isinstance(made, dict) else {}
    guessed = summary.get("balance_targets_inferred")
    for k in [k for k in ("val", "test") if isinstance(guessed, list) and k in guessed]:
        made.pop(k, None)
    return made


class LeakageError(UserError):
    """A split whose train side shares a group / an image with its val or test side."""
    exit_code = 1


def _stratify_cli(text: str) -> tuple[str, ...]:
    """--stratify's columns; one naming none is refused (options.list_items), saying what dropping it takes: label,
    but for a `--check FILE --fix`, whose balance takes the columns FILE's split recorded (split.run._stratify_of)."""
    if text.strip().lower() == "none":
        return ()
    return tuple(list_items("--stratify", text, "column(s), comma-separated (e.g. mask,gender,age_band), or 'none'",
                            item="column", left_out="for label (with --check FILE --fix: the columns its split "
                                                     "recorded, if any)"))


def _ages_cli(ages) -> str | None:
    return join(ages) or None


PARTS, LABELS, LINKS, RUNTIME = "Parts", "Labels", "Linked images", "Runtime"
# the options that decide which rows go together and where (not where split runs or how it reports): what a printed
# command repeats to make a recorded split again (predict's held-out commands)
SPLIT_DEFINITION = ("group_col", "stratify", "seed", "age_bands", "drop_ages", "relabel_age", "near_dup", "dup_method",
                    "dup_threshold", "dup_candidates", "model")
# what `split --check FILE` reads of SplitConfig (the leak check: its groups, near duplicates and scan), and what only
# its --fix reads, with what for: any other option, and these without --fix, did nothing there (the check splits,
# draws, relabels and leaves out nothing), so check_read_by_check refuses it typed, before any scan
CHECK_READS = ("group_col", "near_dup", "dup_method", "dup_threshold", "dup_candidates", "model", "embed_precision",
               "device", "max_pixels", "cache_dir", "allow_leaks")
CHECK_FIX_READS = {"val": "its balance table's target shares", "test": "its balance table's target shares",
                   "stratify": "the classes its balance table measures",
                   "tolerance": "how far its repair may move a side's share, and its balance warning",
                   "age_bands": "a profile table's class meanings in its report"}
# what the summary a `--check FILE --fix` writes records of its own run (its balance's targets, age bands and
# tolerance; the folds the table has): every other setting (--seed, --drop-ages, the group column, the duplicate
# settings, --stratify: the columns its rows were drawn by) stays the checked split's, as the summary beside it
# recorded them, for the fix draws nothing
CHECK_FIX_RECORDS = ("val", "test", "folds", "tolerance", "age_bands", "relabel_age")


@dataclass
class SplitConfig:
    """Every option of `imgcls split` but the paths (imgcls.options: default, choices, range, help, panel)."""
    val: float = option(0.2, panel=PARTS, lo=0, hi=1, hi_open=True, conflicts="folds",
                        help="Validation fraction (with --folds K each fold validates 1/K instead).")
    test: float = option(0.0, panel=PARTS, lo=0, hi=1, hi_open=True, help="Test fraction held out before val / folds.")
    folds: int | None = option(None, panel=PARTS, lo=2, none="holdout: one val part (--val)",
                               help="K-fold: adds `fold` (0..K-1, the fold where the row is validation).")
    group_col: str | None = option(None, panel=PARTS, none="group, a CSV's only where it has one",
                                   help="Column whose rows never cross splits or folds (e.g. the person); 'none': no "
                                        "groups, a `group` column left unread.")
    stratify: Sequence[str] = option(("label",), panel=PARTS, cli_type=str, to_cli=lambda v: join(v) or "none",
                                     from_cli=_stratify_cli,
                                     help="Column(s) to stratify on, comma-separated (e.g. mask,gender,age_band), or "
                                          "'none'.")
    seed: int = seed_option(RUNTIME)
    age_bands: Sequence[int] = option(DEFAULT_AGE_BANDS, panel=LABELS, cli_type=str, to_cli=join,
                                      from_cli=int_list("--age-bands"), validator=age_edges("--age-bands"),
                                      help="Age band edges for profile datasets.")
    drop_ages: Sequence[int] = option((), panel=LABELS, cli_type=Optional[str], to_cli=_ages_cli,
                                      from_cli=lambda t: parse_ages(t),
                                      help="Leave out profiles of these ages, e.g. 57-59 (rows stay, split='' with a "
                                           "reason).")
    relabel_age: Sequence[int] | None = option(None, panel=LABELS, cli_type=Optional[str], to_cli=join,
                                               from_cli=int_list("--relabel-age", RELABEL_EXAMPLE),
                                               validator=age_edges("--relabel-age", RELABEL_EXAMPLE),
                                               none="the --age-bands edges",
                                               help="Edges used to put ages into the --age-bands classes, e.g. 29,59.")
    near_dup: bool = option(True, panel=LINKS, flags=("--near-dup/--no-near-dup",),
                            help="Keep near duplicates (clean's definition) on one side, and check.")
    dup_method: str = dup_method_option(LINKS, ("near_dup",))
    dup_threshold: float | None = dup_threshold_option(LINKS, ("near_dup",))
    dup_candidates: float = dup_candidates_option(LINKS, ("near_dup",))
    model: str = option(DEFAULT_EMBEDDER, panel=LINKS, needs=("near_dup",),
                        help="Embedding model of the near-duplicate search.")
    embed_precision: str = embed_precision_option(LINKS, ("near_dup",))
    device: str = device_option(RUNTIME)
    max_pixels: int = max_pixels_option()
    cache_dir: str | None = option(None, panel=LINKS, cli_type=Optional[Path], from_cli=str, needs=("near_dup",),
                                   none=CACHE_DIR_NONE,
                                   help="Embedding and verified-pair cache folder (shared with clean).")
    tolerance: float = option(0.05, panel=PARTS, lo=0, hi=1,
                              help="Warn when a class's share of a part is further than this from its target.")
    allow_leaks: bool = option(False, panel=PARTS, help="Write / accept a contaminated split (exit 0).")
    extra: dict = option(factory=dict, cli=False, help="Free-form settings recorded with the split (Python use).")

    def validate(self) -> None:
        """Choices and ranges (imgcls.options.check) and the fractions together; before anything is read."""
        check(self)
        if self.val + self.test >= 1 and not self.folds:
            raise UserError(f"--val {self.val} + --test {self.test} leave nothing to train on; keep their sum below 1")

    def near_duplicates(self) -> NearDuplicates:
        """The near-duplicate definition these options choose (clean's, with the same embedding cache)."""
        from imgcls.links import NearDuplicates       # numpy: the step's, not the command line's
        return NearDuplicates(self.dup_method, self.dup_threshold, self.dup_candidates, self.model,
                              device=self.device, cache_dir=self.cache_dir, precision=self.embed_precision,
                              max_pixels=self.max_pixels)


def check_read_by_check(cfg: SplitConfig, typed, file, fix: bool) -> None:
    """The options of `--check FILE [--fix]` that it would not read (CHECK_READS, CHECK_FIX_READS), among `typed`
    (the CLI's typed flags; a Python caller's fields not at their default), refused in one line naming their flags,
    before any scan: `--check s.csv --seed 3` (or --tolerance, --stratify without --fix) checked the same, unsaid."""
    names = [n for n in cli_fields(SplitConfig) if n in set(typed)]      # in field order
    never = [n for n in names if n not in CHECK_READS and n not in CHECK_FIX_READS]
    if never:
        given = typed_text(cfg, never)
        raise UserError(f"{given}: --check {file} checks the split the table has, as it is (it splits, draws, "
                        f"relabels and leaves out nothing), so {_it(never)} would do nothing there; drop "
                        f"{_flags(never)}, or make a new split with imgcls split SRC {given}")
    fix_only = [] if fix else [n for n in names if n in CHECK_FIX_READS]
    if fix_only:
        what = "; ".join(dict.fromkeys(CHECK_FIX_READS[n] for n in fix_only))
        raise UserError(f"{typed_text(cfg, fix_only)}: only --check {file} --fix reads {_it(fix_only, 'it', 'them')} "
                        f"({what}), not the check alone; add --fix or drop {_flags(fix_only)}")


def _it(names, one: str = "it", more: str = "they") -> str:
    return one if len(names) == 1 else more


def _flags(names) -> str:
    table = specs(SplitConfig)
    return " ".join(flag(n, table[n][1]) for n in names)


def parse_ages(text: str | None) -> list[int]:
    """'57-59' -> [57, 58, 59]; '57-59,80' -> [57, 58, 59, 80]; None (not given) -> []. A text naming no age (an
    empty shell variable) is refused, saying what it takes: a new split read it as no --drop-ages unsaid, and --check
    refused it as 'no --drop-ages'."""
    if text is None:
        return []
    parts = list_items("--drop-ages", text, "ages and ranges like 57-59 or 57-59,80", item="age",
                       left_out="to leave no age out")
    ages: set[int] = set()
    try:
        for part in parts:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                ages.update(range(lo, hi + 1))
            else:
                ages.add(int(part))
    except ValueError:
        raise UserError(f"--drop-ages takes ages and ranges like 57-59 or 57-59,80 (got '{text}')") from None
    return sorted(ages)

def parse_folds(value) -> list[int] | None:
    """--folds: None for all (every fold of the data's fold column), else the fold numbers it names (K or K,L)."""
    text = str(value).strip().lower()
    if text == "all":
        return None
    try:
        folds = [int(f) for f in text.split(",")]
    except ValueError:
        folds = []
    if not folds or min(folds) < 0:
        raise UserError(f"--folds {value!r}: use all, a fold number K or a list K,L (e.g. --folds all, --folds 0, "
                        f"--folds 0,2): the fold column's numbers from "
                        + python_too("imgcls split --folds N", "run_split(cfg=SplitConfig(folds=N))"))
    twice = next((f for i, f in enumerate(folds) if f in folds[:i]), None)
    if twice is not None:       # trained twice into one fold folder, its images counted twice out of fold
        once = ",".join(map(str, dict.fromkeys(folds)))
        raise UserError(f"--folds {value!r} names fold {twice} twice: name each fold once (e.g. --folds {once})")
    return folds
