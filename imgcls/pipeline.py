"""The pipeline order, raw -> clean -> processed -> splits: where each step's default input comes from (and
predict's default test data)."""
from __future__ import annotations

import os
from pathlib import Path

from imgcls.console import info, sh, warn
from imgcls.errors import UserError
from imgcls.outputs import MANIFEST_NAME


# (stage, default location) in pipeline order: raw data, then each step's default output
PIPELINE = (("raw", "data/raw"), ("clean", "data/clean"), ("processed", "data/processed"),
            ("splits", "data/splits.csv"))
# the last stage a step reads by default: it takes the furthest-along stage that exists, up to this one
STEP_READS_UP_TO = {"preprocess": "clean", "split": "processed", "train": "splits"}


def _stage_file(location: Path) -> Path:
    return location / MANIFEST_NAME if location.suffix != ".csv" else location


def _stages(step: str) -> tuple[tuple[str, str], ...]:
    return PIPELINE[:[s for s, _ in PIPELINE].index(STEP_READS_UP_TO[step]) + 1]


def _found(step: str, base: str | os.PathLike = ".") -> list[tuple[str, str, Path]]:
    """(stage, location, path) of each of `step`'s default inputs that exists, in pipeline order."""
    found = []
    for name, loc in _stages(step):
        path = Path(base, loc)
        if (path.is_dir() if name == "raw" else _stage_file(path).is_file()):
            found.append((name, loc, path))
    return found


def has_default_input(step: str, base: str | os.PathLike = ".") -> bool:
    """Whether `step` given no input finds one (default_input would not refuse), said nowhere."""
    return bool(_found(step, base))


def _competition_table(base: str | os.PathLike, role: str) -> Path | None:
    """The competition table `base` holds for `role` ('train', 'test'), named where no default input (test data)
    exists: of the CSVs listing its images (FolderView.image_tables: DACON's train.csv and test.csv beside train/
    and test/, Kaggle's beside train_images/), the first whose name starts with `role`; for 'test' without one,
    the sample submission listing the test images (Kaggle's sample_submission.csv beside test_images/, no test.csv:
    its rows are the test set's); None without one."""
    from imgcls.layouts import FolderView
    from imgcls.submission import is_template_name
    try:
        tables = FolderView(Path(base)).image_tables
    except OSError:
        return None
    return next((t for t in tables if t.name.lower().startswith(role)),
                next((t for t in tables if is_template_name(t)), None) if role == "test" else None)


# the flag that reads a competition table's own class column (DACON's train.csv: artist): train trains on it
CLASS_COLUMN_FLAG = {"eda": "--label-col", "clean": "--label-col", "preprocess": "--label-col",
                     "split": "--label-col", "train": "--target", "tune": "--target"}


def _class_column_flag(step: str, table: Path) -> str:
    """' --label-col artist' (train: ' --target artist') for a competition table without a label / class / target
    column whose own column holds the classes (DACON's train.csv), so the command named for a bare step works as
    typed (without it, split and train refuse unlabelled data); ' --label-col COLUMN (one of: a, b)' where several
    could; '' where the table has labels, no such column, or cannot be read."""
    from imgcls.layouts import LABEL_COLUMN_GUESSES, read_csv
    from imgcls.manifest import class_columns
    try:        # layouts.read_csv: the table as the step will read it (a ';' or tab separator, a BOM, its encoding)
        df = read_csv(table, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UserError):
        return ""
    if any(c in df.columns for c in LABEL_COLUMN_GUESSES):     # read as the labels without a flag
        return ""
    cols = class_columns(df)
    flag = CLASS_COLUMN_FLAG[step]
    return (f" {flag} {sh(cols[0])}" if len(cols) == 1 else
            f" {flag} COLUMN (one of: {', '.join(cols)})" if cols else "")


def _competition_table_command(command: str, base: str | os.PathLike = ".", also: str = "") -> str:
    """'this folder holds train.csv: imgcls COMMAND train.csv --label-col artist' (the flag where its own column
    holds the classes: _class_column_flag; `also`: further options), what a bare step names in a competition folder
    (_competition_table); '' without one."""
    table = _competition_table(base, "train")
    if table is None:
        return ""
    return (f"this folder holds {table.name}: imgcls {command} {sh(table)}{_class_column_flag(command, table)}"
            + (f" {also}" if also else ""))


def given_input(step: str, src: str | os.PathLike | None, base: str | os.PathLike = ".") -> Path:
    """The SRC of a step with no default input (eda, clean: the data is the user's to name), refused when None
    with the command to type: the competition table in `base` (_competition_table_command), else the pipeline's
    raw folder where it exists, else a data folder or manifest."""
    if src is not None:
        return Path(src)
    raw = dict(PIPELINE)["raw"]
    fix = _competition_table_command(step, base) or "pass the dataset: " + (
        f"imgcls {step} {raw}" if Path(base, raw).is_dir() else
        f"imgcls {step} DATA_FOLDER (a folder of class folders, or a {MANIFEST_NAME})")
    raise UserError(f"no data given to {step}; {fix}")


def default_input(step: str, base: str | os.PathLike = ".", command: str | None = None, also: str = "") -> Path:
    """The default input of `step`: the furthest-along stage of PIPELINE that exists (a step's output counts once
    its manifest is written; raw data once its folder exists), up to the step's own place in the pipeline, so
    re-running an earlier step never silently makes a later one skip the split. Announced; a warning names any
    earlier step's output written after the chosen one (the chosen file does not include that run). `command`: the
    command that reads it, named in the lines where it is not `step` (tune reads train's input), with `also`, the
    further options the command named needs (tune's --study NAME)."""
    command = command or step
    shown = [loc for _, loc in _stages(step)]
    found = _found(step, base)
    if not found:
        fix = _competition_table_command(command, base, also) or "pass the data folder or manifest"
        raise UserError(f"no input given to {command} and none of {', '.join(reversed(shown))} exists; {fix}")
    name, loc, chosen = found[-1]
    info(f"using {loc} (the furthest step's output of {' -> '.join(shown)})")
    if name != "raw":
        t = _stage_file(chosen).stat().st_mtime
        newer = [(n, lc) for n, lc, p in found[:-1] if n != "raw" and _stage_file(p).stat().st_mtime > t]
        for n, lc in newer:
            warn(f"{lc} was written after {loc}: {command} reads {loc}, which does not include that {n} run; "
                 f"rerun the steps after it (e.g. imgcls {'split' if name == 'splits' else 'preprocess'}) "
                 f"or pass {lc} to use it")
    return chosen


TEST_DATA = ("data/test", "data/eval")
TEST_FOLDERS = ("test", "test_images", "eval")    # a competition's test images beside train/ (Kaggle's, no CSV)


def _test_folder(base: str | os.PathLike) -> Path | None:
    """The first of TEST_FOLDERS in `base` that holds an image, which a bare predict names; None without one."""
    from imgcls.layouts import holds_image
    return next((Path(base, n) for n in TEST_FOLDERS if Path(base, n).is_dir() and holds_image(Path(base, n))),
                None)


def default_test_data(base: str | os.PathLike = ".", source: str | os.PathLike | None = None) -> Path:
    """predict's default --data: the first of TEST_DATA that exists, announced. Without one, a competition's test
    table in `base` (DACON's test.csv; Kaggle's sample_submission.csv where no test table lists the test_images/)
    is named with the predict command that reads it (`source`: the run as given, None: the latest)."""
    for loc in TEST_DATA:
        if Path(base, loc).exists():
            info(f"using {loc} (test data: the first of {', '.join(TEST_DATA)} found)")
            return Path(base, loc)
    from imgcls.outputs import predict_fix
    from imgcls.submission import is_template_name
    table = _competition_table(base, "test")
    folder = _test_folder(base) if table is None else None
    fix = (f"this folder holds {folder.name}/: {predict_fix(source, data=folder)}" if folder is not None else
           "pass the data folder or manifest" if table is None else
           f"this folder holds {table.name}" + (" (no test table; its rows are the test images)"
                                                if is_template_name(table) else "")
           + f": {predict_fix(source, data=table)}")
    raise UserError(f"no test data (--data) given and none of {', '.join(TEST_DATA)} exists; {fix}")
