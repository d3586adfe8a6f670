"""The layouts a dataset arrives in, read into manifest rows: ImageFolder (and its train / val / test split-folder
form), the mask competition's profile folders, a competition CSV, an unlabeled folder; LayoutOptions says how
(the `Input layout` flags). imgcls.manifest detects the layout, reads manifests themselves and scans the images.
"""
from __future__ import annotations

import os
import unicodedata
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import pandas as pd

from imgcls import io as imgio
from imgcls.console import info, warn
from imgcls.errors import UserError
from imgcls.layout_options import (LABEL_COLUMN_GUESSES, LAYOUT_PANEL, LAYOUTS,  # noqa: F401 (declared there)
                                   NO_GROUPS, LayoutOptions)
from imgcls.options import shown
from imgcls.profiles import DEFAULT_AGE_BANDS, GENDER_CLASSES, PROFILE_DIR, apply_profile_labels, mask_from_stem

PATH_COLUMN_GUESSES = ("path", "image", "image_path", "img_path", "filepath", "file_path", "file", "filename",
                       "ImageID", "image_id", "id")
# tried in this order for a CSV id without an extension when --ext is not given: every extension imgcls.io reads
# as an image (a .jfif, .jpe or .ppm too), the common ones first
COMMON_EXTENSIONS = imgio.IMAGE_EXTENSION_ORDER
# where a competition CSV's names are looked for when they are not beside it (the mask competition: eval/info.csv,
# eval/images/); a folder holding such a CSV and only these image folders is read as that CSV
CSV_IMAGE_FOLDERS = ("images", "image", "imgs", "test")
# the split-folder layout of Ultralytics / timm users: root/train/<class>/..., root/val/<class>/..., root/test/...
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# the column a competition CSV's groups are read from without --group-col: the manifest's own name for them
GROUP_COLUMN_GUESSES = ("group",)


# DataFrame.attrs key: the column of a competition CSV read as the groups without --group-col (GROUP_COLUMN_GUESSES)
CSV_GROUPS_GUESSED = "imgcls_csv_groups_guessed"
# the column a competition CSV's labels were read from unasked (`class`, `target`: LABEL_COLUMN_GUESSES), which
# clean / preprocess / split record as --label-col's (manifest.label_col_record)
CSV_LABELS_GUESSED = "imgcls_csv_labels_guessed"
# DataFrame.attrs key: the empty class folders read_folder found (empty_class_folders_read)
EMPTY_CLASSES_READ = "imgcls_empty_class_folders"
# DataFrame.attrs key: (the CSV file, its text) read_csv read a table's rows from: a message names a row by its line
# in the file (row_at), the file not read again
CSV_ROWS_READ = "imgcls_csv_rows_read"
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def _header_line(text: str) -> tuple[int, str]:
    """(how many lines come before a CSV's header, its header's line as written): its first line of more than
    spaces and tabs, as pandas reads it (the empty lines and lines of spaces before it are passed over)."""
    import io as _io
    for i, line in enumerate(_io.StringIO(text, newline="")):
        if line.strip(" \t\r\n"):
            return i, line
    return 0, ""


def _header(rows, text: str) -> list[str]:
    """The header of a CSV's text read from `rows`, a csv.reader of it, left past the header (_header_line: each
    line before it one row)."""
    for _ in range(_header_line(text)[0]):
        next(rows)
    return next(rows, [])


def csv_separator(text: str) -> str:
    """The field separator of a CSV's text, judged by its header line: a comma, unless the header has none and
    has semicolons or tabs (what a spreadsheet in a comma-decimal locale, or a TSV, writes)."""
    import csv
    import io as _io
    header = _header(csv.reader(_io.StringIO(text, newline="")), text)
    if len(header) > 1:
        return ","
    line = header[0] if header else ""
    return next((s for s in (";", "\t") if s in line), ",")


def csv_style(text: str) -> dict:
    """How a CSV's text is written, as pandas.DataFrame.to_csv's options (sep, lineterminator, quoting, encoding), for
    a file written as it is (predict's submission.csv filling a sample submission: a competition's checker may read
    its format alone): its separator (csv_separator), its header's line ending, every field quoted where every field
    of its header is, and a UTF-8 byte order mark where its file started with one when it was read (CsvText.bom)."""
    import csv
    sep = csv_separator(text)
    first = _header_line(text)[1]
    header = first.rstrip("\r\n")
    fields = next(csv.reader([header], delimiter=sep), [])
    quoted = bool(fields) and header == sep.join('"' + f.replace('"', '""') + '"' for f in fields)
    return {"sep": sep, "lineterminator": first[len(header):] or "\n",
            "quoting": csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL,
            **({"encoding": "utf-8-sig"} if getattr(text, "bom", False) else {})}


class CsvText(str):
    """A CSV file's text as csv_text read it, and `bom`: whether the file started with UTF-8's byte order mark
    (Excel's 'CSV UTF-8'; a checker comparing the header byte for byte wants it back), which the text is without:
    told from the bytes read, not by opening the file again when a table is written as it is (csv_style)."""
    bom: bool = False


def csv_read_style(df: pd.DataFrame) -> dict:
    """csv_style of the CSV df's rows were read from (read_csv's attrs: a competition's test.csv, a sample submission
    given as predict's --data), {} for rows of no CSV (a folder's images): a table written for those rows (predict's
    submission.csv) is written as the file the competition gave."""
    read = df.attrs.get(CSV_ROWS_READ)
    return csv_style(read[1]) if read is not None else {}


def _utf16_name(data: bytes) -> str | None:
    """iconv's name for the UTF-16 a file's bytes are in (Excel's 'Unicode Text' export), None for other bytes: its
    BOM (utf-16, iconv reads the byte order from it), else NUL bytes, which UTF-8 text of a CSV never holds, at the
    odd (little-endian ASCII) or even (big-endian) offsets."""
    import codecs
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    head = data[:4096]
    if b"\x00" not in head:
        return None
    return "utf-16le" if head[1::2].count(0) >= head[0::2].count(0) else "utf-16be"


def csv_text(path: Path, what: str = "CSV file", fix: str | None = None) -> CsvText:
    """The text of a CSV file, read whole once (read_csv's, FolderView.text's), with the mistakes a user can make
    said in one line: not a regular file, an empty (0-byte) file, text that is not UTF-8. `fix`: the fix each line
    names instead of its own (a file imgcls wrote: rundir.read_run_csv's)."""
    path = Path(path)
    if imgio.not_regular_reason(path) is not None:
        raise UserError(f"{what} {path} is not a regular file; {fix or 'give a CSV file'}")
    def refuse_utf16(data: bytes) -> None:
        if (utf16 := _utf16_name(data)) is not None:
            raise UserError(f"{what} {path} is UTF-16 text, not UTF-8; "
                            f"{fix or f'save it as UTF-8 (e.g. iconv -f {utf16} -t utf-8)'}") from None

    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")       # the BOM is no text: CsvText.bom keeps it
        if "\x00" in text[:4096]:     # UTF-16 of ASCII text without a BOM is valid UTF-8, NULs every other byte
            refuse_utf16(data)
    except UnicodeDecodeError as e:
        refuse_utf16(data)
        fix = fix or ("save it as UTF-8 (iconv -f ENCODING -t utf-8, ENCODING the one it was saved in: "
                      "cp1252 / latin-1 for Western European, cp949 for Korean, ...)")     # bytes alone can't tell
        raise UserError(f"{what} {path} is not UTF-8 text (byte {e.start}: {e.reason}); {fix}") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not text.strip():
        raise UserError(f"{what} {path} is empty; {fix or 'give a CSV with a header row (e.g. path,label)'}")
    import codecs
    text = CsvText(text)
    text.bom = data.startswith(codecs.BOM_UTF8)
    return text


def read_csv(path: Path, what: str = "CSV file", text: str | None = None, fix: str | None = None,
             **kwargs) -> pd.DataFrame:
    """pandas.read_csv with the mistakes a user can make said in one line: csv_text's, and a row with more or fewer
    fields than the header. `text`: the file's csv_text where the caller read it already (FolderView.text: a file
    detected, then read, is read from disk once). `fix`: the fix each line names instead of its own (a user's CSV:
    fix that row; a file imgcls wrote: rundir.read_run_csv's)."""
    import csv
    path = Path(path)
    if text is None:
        text = csv_text(path, what, fix)
    import io as _io
    sep = csv_separator(text)
    if sep != ",":              # a European spreadsheet's export (id;label) or a TSV: read with its own separator
        kwargs.setdefault("sep", sep)
    if kwargs.get("nrows") != 0:
        rows = csv.reader(_io.StringIO(text, newline=""), delimiter=sep)  # quoted values may hold seps and newlines
        try:
            header = _header(rows, text)
            width = len(header)
            _refuse_repeated_names(header, path, what, fix)
            end, skipped = rows.line_num, None
            for row in rows:
                if row and len(row) != width:
                    # a line of spaces pandas skips (_skipped_lines) is no row: looked for behind a ragged one alone
                    skipped = _skipped_lines(text, sep) if skipped is None else skipped
                    if end + 1 not in skipped:
                        raise UserError(f"{what} {path}: line {rows.line_num} has {len(row)} field(s), the header "
                                        f"has {width}; " + (fix or f"fix that row (a {SEPARATOR_NAMES[sep]} inside a "
                                                                   f"value needs quotes)"))
                end = rows.line_num
        except csv.Error as e:
            raise UserError(f"{what} {path} cannot be parsed as CSV (line {rows.line_num}: {e}); "
                            f"{fix or 'fix the file'}") from None
    try:
        df = pd.read_csv(_io.StringIO(text), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"{what} {path} cannot be parsed as CSV ({str(e).strip().splitlines()[-1]}); "
                        f"{fix or 'fix the file'}") from None
    df.attrs[CSV_ROWS_READ] = (str(path), text)     # the text itself, not a copy: its lines found when a row is named
    return df


def _refuse_repeated_names(header: list[str], path: Path, what: str, fix: str | None) -> None:
    """A header naming a column twice: pandas renames the second (img.1), a name the user never wrote and errors
    would offer back, and which of the two is meant is unsaid. Empty names (a spreadsheet's trailing commas) are
    no name."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name.strip() and name in seen:
            raise UserError(f"{what} {path}: the header names the column {name} twice (columns {seen[name]} and {i}); "
                            f"{fix or 'give each column its own name (rename or drop one)'}")
        seen.setdefault(name, i)


def named_columns(df: pd.DataFrame) -> list:
    """The columns of a read_csv table whose header cell names them: pandas calls an empty one (a spreadsheet's
    trailing comma, `id,`) 'Unnamed: I', I its position, a name the file does not hold."""
    return [c for i, c in enumerate(df.columns) if c != f"Unnamed: {i}"]


def _skipped_lines(text: str, sep: str) -> set[int]:
    """The lines of a CSV's text pandas skips (numbered as csv.reader's line_num counts them): empty ones, and ones
    of spaces and tabs only, the separator not among them (a TSV's line of one tab is a row of empty cells). Such a
    line holds no quote: a row starting on it ends there."""
    import io as _io
    blank = " \t".replace(sep, "")
    return {i for i, line in enumerate(_io.StringIO(text, newline=""), 1) if not line.rstrip("\r\n").strip(blank)}


def csv_row_lines(text: str) -> list[int]:
    """The line of a CSV's text each data row starts on (the header's is 1), as read_csv's rows are numbered by
    pandas: blank lines are no row (pandas skips them: _skipped_lines), and a quoted value's line breaks stay in its
    row. What a line naming one row says: a row's index + 2 was off after either."""
    import csv
    import io as _io
    sep = csv_separator(text)
    skipped = _skipped_lines(text, sep)
    rows = csv.reader(_io.StringIO(text, newline=""), delimiter=sep)
    _header(rows, text)
    lines, end = [], rows.line_num
    for row in rows:
        if row and end + 1 not in skipped:      # a one-column CSV's '   ': csv.reader's one field, no row
            lines.append(end + 1)
        end = rows.line_num
    return lines


def row_at(df: pd.DataFrame, pos: int, where: str) -> str:
    """Where a message names df's row at position `pos`: '<the CSV>: line L', the file's line the row starts on
    (csv_row_lines), where df holds a CSV's rows as read_csv read them (its attrs, carried by the reader; none left
    out, none added, index as read); else '<where>: row N (df.iloc[N-1])', N counted from 1 (a Python caller's own
    DataFrame: `where` names it)."""
    read = df.attrs.get(CSV_ROWS_READ)
    if read is not None and df.index.equals(pd.RangeIndex(len(df))):
        lines = csv_row_lines(read[1])
        if len(lines) == len(df):
            return f"{read[0]}: line {lines[pos]}"
    return f"{where}: row {pos + 1} (df.iloc[{pos}])"


def refuse_empty_cells(what: str, text: str, rows: Sequence[int], column: str, holds: str, fix: str) -> None:
    """One line for a CSV's rows with nothing in a cell every row must fill (`rows`: their positions among the data
    rows; none: nothing said): `what` (the file as named), the first one's line in the file (csv_row_lines), the
    `column`, what the cell `holds`, how many more rows, and the `fix`."""
    if len(rows):
        more = f" (and {len(rows) - 1} more row(s))" if len(rows) > 1 else ""
        raise UserError(f"{what}: line {csv_row_lines(text)[rows[0]]} has no {holds} in its column {column}{more}; "
                        f"{fix}")


# folders of a system's own files, never a class or images of one: a zip made on macOS holds its resource forks
# (._<name>) in __MACOSX; a Synology NAS keeps a thumbnail folder @eaDir/<image>/SYNOPHOTO_THUMB_*.jpg beside every
# folder of images it indexed (copies of each image, read as images of its class)
SYSTEM_FOLDERS = frozenset({"__MACOSX", "@eaDir"})


def hidden_name(name: str) -> bool:
    """A file or folder no layout reads: hidden (.DS_Store, ._photo.jpg, .ipynb_checkpoints) or a system's folder
    (SYSTEM_FOLDERS: a macOS zip's __MACOSX, a Synology NAS's @eaDir thumbnails), never a class or a split
    folder."""
    return name.startswith(".") or name in SYSTEM_FOLDERS


def utf8_name(name: str) -> bool:
    """Whether a name the file system gave can be written as text (a manifest, a CSV, the console): a name whose bytes
    are not UTF-8 (unpacked as is from a zip made on Windows: cp949 Korean, latin-1 accents) comes back from os with
    surrogate escapes, which no UTF-8 file can hold."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_name(path: str | os.PathLike) -> str:
    """A path whose name may not be UTF-8 (utf8_name) as printable text: the bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def csv_route(folder: str, data_flag: str = "") -> str:
    """How a step is told to read `folder`'s images through a CSV that lists them (names relative to the folder).
    With `data_flag` (predict's --data; predict takes --csv): the folder as the data, with --csv. Without (the step
    unknown: train and tune have no --csv): the CSV saved in the folder and given as the data itself, which every
    step reads (its names are looked for beside it). Named where images are not found or left out (LeftOut,
    manifest.require_readable)."""
    if data_flag:
        return f"{data_flag} {folder} --csv CSV"
    return f"{folder}/CSV (the CSV saved in {folder}, given as the data)"


# files a dataset holds beside its images (YOLO's label .txt, annotations, tables): never opened to look for an image
_NOT_IMAGE_SUFFIXES = frozenset({".txt", ".csv", ".tsv", ".json", ".xml", ".yaml", ".yml", ".md", ".npy", ".npz",
                                 ".pt", ".pth", ".pkl", ".parquet", ".py", ".log", ".db", ".ini", ".zip", ".tar",
                                 ".gz"})


class LeftOut:
    """What images_under leaves out that a user would miss, collected for the reader to say once (warn, or refuse
    where every image must be read: predict's test images): names
    that are not UTF-8 (utf8_name), files that hold an image (by their first bytes) under a name without an
    image extension (a web download's photo.jpg_large, image.php, an id with no extension), and folders that cannot
    be listed (no read permission: their images are not an empty class). The one wording of each, each naming the
    routes that work for the step that reads them (say)."""

    def __init__(self):
        self.not_utf8: list[Path] = []
        self.unnamed: list[tuple[Path, str]] = []
        self.unlisted: list[tuple[Path, str]] = []     # folders the walk could not list, with the system's reason

    def _found(self, root: Path, refusing: bool, listing: str | None) -> list[tuple[str, str, str, str, str]]:
        """(what was found, what it is, how a warning says it was left out, the example named, the fix) for each
        kind left out: warn's and refuse's words (the first two joined by 'under root')."""
        out = []
        if self.not_utf8:
            names = sorted(shown_name(p.relative_to(root)) for p in self.not_utf8)
            out.append((f"{len(names)} image file or folder name(s)", "are not UTF-8 text", " and were left out",
                        f"e.g. '{names[0]}'",
                        f"rename them to UTF-8 (e.g. convmv -r -f cp949 -t utf-8 --notest {shown_name(root)}, the -f "
                        f"encoding the names were written in)"))
        if self.unnamed:
            p, fmt = self.unnamed[0]
            out.append((f"{len(self.unnamed)} file(s)", "hold images but their names have no image extension",
                        ", so they were not read", f"e.g. {_rel(p, root)} ({fmt})",
                        _unnamed_fix(root, refusing, listing)))
        if self.unlisted:
            p, why = self.unlisted[0]
            shown_p = shown_name(p.relative_to(root)) if p != root else shown_name(root)
            out.append((f"the images of {len(self.unlisted)} folder(s)", "cannot be listed", " and were left out",
                        f"e.g. {shown_p} ({why})",
                        f"make them readable (e.g. chmod -R u+rX {shown_name(p)}) and run again"))
        return out

    def warn(self, root: Path, listing: str | None) -> None:
        for found, what, left, example, fix in self._found(root, False, listing):
            warn(f"{found} under {root} {what}{left}, {example}: {fix}")

    def refuse(self, root: Path, listing: str | None) -> None:
        """One line (UserError) when anything was left out: predict's test images, whose submission must hold a row
        for each; every kind found is named, each with its count, an example and its fix."""
        kinds = self._found(root, True, listing)
        missing = "would have no row in the predictions (a submission missing rows)"
        if len(kinds) == 1:
            found, what, _, example, fix = kinds[0]
            raise UserError(f"{found} under {root} {what}, {example}: they {missing}; {fix}")
        if kinds:
            raise UserError(f"image files of {len(kinds)} kinds under {root} {missing}: "
                            + "; ".join(f"({i}) {found} {what}, {example}: {fix}"
                                        for i, (found, what, _, example, fix) in enumerate(kinds, 1)))

    def say(self, root: Path, unread_images: str, listing: str | None) -> None:
        """warn, or with `unread_images="refuse"` refuse (predict). `listing`: the columns of a CSV through which
        the layout read could take these images as they are named (path,label for class folders, path for an
        unlabeled folder; None for profile folders, whose labels are their folders' names): named as a route."""
        self.refuse(root, listing) if unread_images == "refuse" else self.warn(root, listing)


def _unnamed_fix(root: Path, refusing: bool, listing: str | None) -> str:
    """The routes for images saved without an image extension that work for the step reading them: renaming them
    (for predict it changes their ids in the submission, wrong where the competition's ids are the bare names), and
    where the layout can take them from a CSV (`listing`, LeftOut.say), reading them as named through a CSV that
    lists them (csv_route)."""
    fix = "rename them with their format's extension (.jpg, .png, ...)"
    if refusing:
        fix += ", which changes their ids in the submission"
        if listing:
            fix += (f"; or, where the competition's ids are these names, keep them and read them through the "
                    f"competition's CSV that lists them: {csv_route(shown_name(root), '--data')}")
    elif listing:
        fix += (f"; or keep their names and read them through a CSV that lists them ({listing}, the paths relative to "
                f"{shown_name(root)}): {csv_route(shown_name(root))}")
    return fix


def _image_walk(root: Path, left_out: LeftOut | None = None, in_order: bool = True,
                view: FolderView | None = None, keep: bool = False) -> Iterator[Path]:
    """The one walk images_under and holds_image share, owning their rules: each visible image file under `root`,
    lazily. Hidden files and folders (hidden_name) are passed over; symlinked folders are followed, each real folder
    once (a link to a folder already read, or back to an ancestor, ends there); a name that is not UTF-8 (utf8_name)
    is left out. With `left_out`, those names, the files holding an image under a name without an image
    extension and the folders that cannot be listed are collected there. `in_order`: images_under's path order
    (each folder listed whole and sorted, its files before its subfolders, those in name order); otherwise as the
    file system lists them, so a caller that stops at the first image lists no more than it needs. `view`: a look
    at `root` (FolderView, or one above it) whose listings the walk takes instead of listing a folder again
    (FolderView.walk_listing: with `keep`, those it makes are kept for a walk that follows; without, each is
    forgotten there once walked)."""
    seen = set()
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:      # a link to a folder already read (or to an ancestor: a loop)
            continue
        seen.add((st.st_dev, st.st_ino))
        subfolders = []
        try:
            with (os.scandir(folder) if view is None else nullcontext(view.walk_listing(folder, keep))) as listing:
                entries = sorted(listing, key=lambda e: e.name) if in_order else listing
                for entry in entries:
                    name = entry.name
                    if hidden_name(name):
                        continue
                    try:
                        is_dir = entry.is_dir()         # follows a symlink
                    except OSError:
                        is_dir = False
                    if not utf8_name(name):
                        if left_out is not None and (is_dir or imgio.is_image_name(name)):
                            left_out.not_utf8.append(Path(entry.path))
                    elif is_dir:
                        subfolders.append(entry.path)
                    elif imgio.is_image_name(name):
                        yield Path(entry.path)
                    elif left_out is not None and Path(name).suffix.lower() not in _NOT_IMAGE_SUFFIXES:
                        fmt = imgio.file_signature_format(Path(entry.path))
                        if fmt:
                            left_out.unnamed.append((Path(entry.path), fmt))
        except OSError as e:     # a folder that cannot be listed (no read permission): named, not taken as empty
            if left_out is not None:
                left_out.unlisted.append((Path(folder), e.strerror or type(e).__name__))
            continue
        stack.extend(reversed(subfolders))      # the first in name order read next


def images_under(root: Path, left_out: LeftOut | None = None, view: FolderView | None = None) -> list[Path]:
    """Every visible image file under `root`, in path order (_image_walk's rules: hidden names passed over,
    symlinked folders followed, each real folder once, names that are not UTF-8 left out); with `left_out`, such
    names and the files that hold an image under a name without an image extension are collected there for the
    reader to name once (LeftOut.warn). `view`: the reader's look at `root` (FolderView): the listings it made
    are walked (and forgotten there), not listed again."""
    return list(_image_walk(root, left_out, view=view))


def holds_image(root: Path, below: bool = False, view: FolderView | None = None) -> bool:
    """Whether `root` holds a visible image anywhere below it: images_under's answer is not empty (the same walk,
    _image_walk), found by stopping at the first image instead of walking and sorting the whole folder (a detection
    asking this of a 100k-image class folder). `below`: an image in a subfolder of `root` only, not directly in it
    (images_under's answer has one whose parent is not `root`). `view`: a look at `root` (or above it) through
    which the folders are listed, their listings kept for the read's walk that follows (FolderView.walk_listing)."""
    root = Path(root)
    return any(not below or p.parent != root
               for p in _image_walk(root, in_order=False, view=view, keep=view is not None))


def nfc(text: str) -> str:
    """`text` in Unicode's composed form (NFC), as competitions spell their ids and classes: a file or folder name
    unpacked from a macOS zip is decomposed (NFD), the same Korean or accented name as other bytes."""
    return unicodedata.normalize("NFC", text)


def _rel(p: Path, root: Path) -> str:
    return p.relative_to(root).as_posix()


def split_folders(root: Path) -> dict[str, str]:
    """{folder name: split} when root is in the split-folder layout (every visible subfolder is train / val /
    valid / validation / test, train among them), else {}."""
    return FolderView(root).splits


def read_folder(root: Path, loose_images: str = "warn", unread_images: str = "warn",
                view: FolderView | None = None) -> pd.DataFrame:
    """ImageFolder (root/<class>/**/<image>), or the split-folder layout (root/train/<class>/..., root/val/<class>/
    ..., root/test/[<class>/]...): the first folder then gives the `split` column and the second the label (test
    images directly under test/ are unlabeled); the label is the folder's name as on disk (manifest.load makes every
    label NFC). Images outside a class folder are left out with a warning, or with
    `loose_images="refuse"` (predict: a submission must cover every test image) refused in one line; so are the
    image files the walk leaves out (LeftOut: names not UTF-8, or without an image extension) with
    `unread_images="refuse"`, which are otherwise named in a warning. `view`: the detection's look at `root`
    (FolderView): its listing and CSVs are read from it, not looked at again."""
    view = view or FolderView(root)
    rows = []
    loose = []
    splits = view.splits
    # found before the walk takes (and forgets there) the listings they are found in: each folder listed once
    view.class_folders      # empty_class_folders'
    view.csvs               # those listing the images outside a class folder (listing_csvs), named where there are
    left_out = LeftOut()
    for p in images_under(root, left_out, view):
        rel = p.relative_to(root)
        if splits:
            part = splits.get(rel.parts[0])     # None: an image beside the split folders
            if len(rel.parts) >= 3 or (part == "test" and len(rel.parts) == 2):
                rows.append({"path": rel.as_posix(), "label": rel.parts[1] if len(rel.parts) >= 3 else "",
                             "group": "", "split": part})
            else:
                loose.append(rel.as_posix())
        elif len(rel.parts) < 2:
            loose.append(rel.as_posix())
        else:
            rows.append({"path": rel.as_posix(), "label": rel.parts[0], "group": ""})   # NFC in manifest.load
    left_out.say(root, unread_images, "path,label,split" if splits else "path,label")
    if splits:
        info(f"{root}: split-folder layout ({', '.join(sorted(splits))}): the folder gives the `split` column, "
             f"the next folder the label")
    listing = [p.name for p in view.listing_csvs] if loose else []   # DACON's folder: train.csv lists train/'s
    if loose and loose_images == "refuse":
        via_csv = f" (or --data {root / listing[0]}, which lists images here)" if listing else ""
        raise UserError(f"{len(loose)} image(s) under {root} have no class folder, e.g. {loose[0]}: read as class "
                        f"folders (the layout detected) they would be left out of the predictions; pass --layout "
                        f"unlabeled to predict every image{via_csv}, or --layout folder for the {len(rows)} in class "
                        f"folders only")
    if loose:
        train_csv = next((n for n in listing if "train" in n.lower()), None)
        warn(f"{len(loose)} image(s) under {root} have no class folder and were left out, e.g. {loose[0]} "
             + (f"({', '.join(listing)} list{'s' if len(listing) == 1 else ''} images here: give the CSV that "
                f"holds the classes as the input{f', e.g. {root / train_csv}' if train_csv else ''})" if listing
                else "(use --layout unlabeled to read them)"))
    # a class folder that cannot be listed, or holds one that cannot (raw/b/sub): its images are unknown, not none
    unlisted = [nfc(_rel(p, root)) for p, _ in left_out.unlisted if p != root]
    empty = [c for c in empty_class_folders(root, [r["path"] for r in rows], view)
             if not any(u == c or u.startswith(c + "/") for u in unlisted)]
    if empty:
        warn(f"{len(empty)} class folder(s) under {root} hold no images, so the data has no such class: "
             f"{shown(empty, 5)}")
    df = pd.DataFrame(rows, columns=["path", "label", "group"] + (["split"] if splits else []))
    df.attrs[EMPTY_CLASSES_READ] = empty
    return df


def empty_class_folders_read(df: pd.DataFrame) -> list[str]:
    """The empty class folders (empty_class_folders) the read of a folder layout found, as it warned of them
    (manifest.load's table, asked before other work makes new tables of it): eda's summary lists them without
    listing the folders again; [] for a table read otherwise."""
    return list(df.attrs.get(EMPTY_CLASSES_READ, []))


def empty_class_folders(root: Path, paths: Iterable[str], view: FolderView | None = None) -> list[str]:
    """The class folders of an ImageFolder `root` (those under each split folder in the split-folder layout) that
    hold none of the images read, `paths` (relative, posix): a class the data does not have. Each is named as the
    class it would be (NFC, as manifest.load spells labels; 'val/b' under a split folder), and a folder spelled
    otherwise than one holding images of its class (NFD beside NFC) is no missing class. `view`: the caller's look
    at `root` (FolderView), when it has one."""
    view = view or FolderView(root)
    depth = 2 if view.splits else 1
    have = {nfc("/".join(p.split("/")[:depth])) for p in paths}
    out = [nfc(_rel(d, root)) for d in view.class_folders if utf8_name(d.name) and nfc(_rel(d, root)) not in have]
    return list(dict.fromkeys(out))         # an empty folder in each spelling: one class


def read_unlabeled(root: Path, images: list[Path] | None = None, left_out: LeftOut | None = None,
                   unread_images: str = "warn", view: FolderView | None = None) -> pd.DataFrame:
    """The images under `root` as unlabeled rows; `images` (with the `left_out` its walk collected): those already
    found under it (LoneFolder), in images_under's order, instead of a walk. What the walk left out is named in a
    warning, or with `unread_images="refuse"` (predict) refused in one line (LeftOut.say). `view`: the caller's look
    at `root` (FolderView), whose listings the walk takes, not listing the folders again."""
    if images is None:
        left_out = LeftOut()
        images = images_under(root, left_out, view)
    rows = [{"path": _rel(p, root), "label": "", "group": ""} for p in images]
    if left_out is not None:
        left_out.say(root, unread_images, "path")
    return pd.DataFrame(rows, columns=["path", "label", "group"])


def _file_named(folder: Path, name: str) -> str | None:
    """The file a CSV's image name is in `folder`: the name itself, or for an id without an image extension (Kaggle's
    `id` column) the first of COMMON_EXTENSIONS (also upper case) that exists, else the bare name where that is a file
    (test images saved without an extension, their ids the names); None when none is. A name the CSV
    spells in another Unicode normal form than the file system (Korean or accented names unpacked from a macOS zip
    are NFD, the CSV NFC) is found too, and returned as the file system spells it."""
    for spelling in dict.fromkeys((name, nfc(name), unicodedata.normalize("NFD", name))):
        if imgio.is_image_name(spelling):
            if (folder / spelling).is_file():
                return spelling
            continue
        hit = next((spelling + e for e in COMMON_EXTENSIONS + tuple(x.upper() for x in COMMON_EXTENSIONS)
                    if (folder / (spelling + e)).is_file()), None)
        if hit is not None:
            return hit
        if (folder / spelling).is_file():
            return spelling
    return None


def _dot_slash_dropped(name) -> str:
    """A CSV's image name as a path under its folder: a leading ./ (DACON's ./train/x.jpg) dropped, and a Windows
    path's backslashes (a CSV written there: .\\test\\x.jpg) read as the separators they are there."""
    name = str(name).replace("\\", "/")
    return name[2:] if name.startswith("./") else name


def _first_names(names: Sequence[str]) -> list[str]:
    """The first 20 of a CSV's image names, a leading ./ dropped: what the folder they are in is judged by."""
    return [_dot_slash_dropped(n) for n in list(names)[:20]]


def _files_named(folder: Path, sample: Sequence[str]) -> int:
    """How many of a CSV's sampled names are files in `folder`."""
    return sum(_file_named(folder, n) is not None for n in sample)


def most_of(hits: int, of: int) -> bool:
    """More than half of `of` things (a CSV's sampled names, a folder's subfolders, a table's files): a folder holding
    only a few of a CSV's names is not the CSV's; a folder with only a few profile folders is not the profiles'; test
    data most of whose files are not there is read from the wrong folder (manifest.require_most_found)."""
    return 2 * hits > of


def csv_images_subfolder(base: Path, names: Sequence[str], csv_path: Path,
                         view: FolderView | None = None) -> Path | None:
    """Where csv_image_root finds none: the one visible folder directly under `base` where most of the CSV's first
    20 names are files (Kaggle's train.csv beside train_images/; a train.csv of bare ids beside train/), else None;
    several such folders are one line naming them and --image-dir. `view`: the look at the folder that detected
    the layout (FolderView, of `base` or above it), whose listing of `base` is read, not listed again."""
    sample = _first_names(names)
    try:
        subs = (view.sub(base) if view is not None else FolderView(base)).subfolders
    except OSError:
        return None
    hits = [d for d in subs
            if d.name.lower() not in CSV_IMAGE_FOLDERS and most_of(_files_named(d, sample), len(sample))]
    if len(hits) > 1:
        # the steps reading a CSV without --image-dir (train, tune, predict) are told the routes they have
        raise UserError(f"the image names of {csv_path} (e.g. {sample[0]}) are files in several folders beside it "
                        f"({', '.join(str(d) for d in hits)}); pass --image-dir with the one that holds its images "
                        f"(a step without --image-dir, train, tune or predict: {csv_route('DIR')}; predict: "
                        f"{csv_route('DIR', '--data')})")
    return hits[0] if hits else None


def csv_image_root(base: Path, names: Sequence[str]) -> Path | None:
    """The folder a competition CSV's image names are relative to, judged by its first 20 names: of `base` (the
    folder given, or the CSV's own) and CSV_IMAGE_FOLDERS under it (the mask competition's eval/images/), the one
    where most of them are files, the first on a tie; None when none holds more than half of them. A folder where
    only a few are files is not the CSV's: train.csv's ids 0000..0019 with its images in train/ would otherwise be
    read from test/, the test images that happen to share five of the names (their pixels under train's labels)."""
    sample = _first_names(names)
    best, most = None, 0
    for folder in (base, *(base / sub for sub in CSV_IMAGE_FOLDERS)):
        if folder.is_dir():
            hits = _files_named(folder, sample)
            if hits > most:
                best, most = folder, hits
    return best if most_of(most, len(sample)) else None


class LoneFolder(NamedTuple):
    """FolderView.lone_folder's finding: the image folder a folder holds alone and, when its images lie directly in
    it, those images (images_under's walk) and what the walk left out, so the reader that follows the detection
    takes them as found instead of walking the folder again; `images` None when class folders in it hold them (the
    folder is the classes' root)."""
    folder: Path
    images: list[Path] | None
    left_out: LeftOut | None    # what the walk left out (images_under): read_unlabeled says it


class FolderView:
    """One look at a folder given as a dataset, shared by the detection (manifest.detect_source makes it) and the
    reader that follows it (manifest.load): the folder listed once (its visible entries, hidden_name's rule), each
    of its CSVs' first rows read once, and each finding made of them (its split folders, its profiles' folder, the
    CSVs listing its images, its own CSV, the image folder it holds alone) made once. A subfolder looked into (the
    profiles' images/, the lone image folder, a split folder) has its own view (`sub`). An OSError listing the
    folder is the caller's to handle (subfolders, profiles_root), or means none (csvs, splits, lone_folder)."""

    def __init__(self, root: Path, ext: str | None = None, _subs: dict[Path, FolderView] | None = None):
        self.root = Path(root)
        self.ext = ext          # --ext: a CSV's names are looked for with it added (listing_csvs), as load reads them
        self._subs: dict[Path, FolderView] = {} if _subs is None else _subs    # one for the views below the first
        self._heads: dict[Path, pd.DataFrame | UserError] = {}
        self._texts: dict[Path, str | UserError] = {}

    def sub(self, folder: Path) -> FolderView:
        """The view of `folder` (this one's, or one below it), made once: the views below the first share their
        views (a split folder's view asked for its class folder gives the one the first view gives)."""
        folder = Path(folder)
        if folder == self.root:
            return self
        if folder not in self._subs:
            self._subs[folder] = FolderView(folder, self.ext, self._subs)
        return self._subs[folder]

    def walk_listing(self, folder: str | os.PathLike, keep: bool) -> list[os.DirEntry]:
        """The listing of `folder` (this one or one below it) for the image walk (_image_walk), hidden names left
        out. `keep`: its view's, made there where none was (the detection's walk for an image: the read's walk that
        follows takes it). Otherwise the read's walk, each folder walked once: the listing its view made (the
        detection's) is taken and forgotten there (its findings, such as its subfolders, stay; ~250 bytes an image
        are not held through the rest of the read), its CSVs found first (csvs: asked after the read, predict's
        look for a sample submission beside the test images), and a folder no view listed is listed, not kept."""
        folder = Path(folder)
        view = self.sub(folder) if keep else self if folder == self.root else self._subs.get(folder)
        if keep:
            return view._listing
        if view is not None and "_listing" in view.__dict__:
            view.csvs
            return view.__dict__.pop("_listing")
        with os.scandir(folder) as it:
            return [e for e in it if not hidden_name(e.name)]

    @cached_property
    def _listing(self) -> list[os.DirEntry]:
        """The files and folders directly in the folder, hidden ones (hidden_name) left out, as listed: os.scandir's
        entries, whose types the listing gave (no stat per entry, but for a symbolic link)."""
        with os.scandir(self.root) as it:
            return [e for e in it if not hidden_name(e.name)]

    def _of_kind(self, is_dir: bool, named: Callable[[str], bool] | None = None) -> Iterator[Path]:
        """The entries that are folders (is_dir) or files, a link by what it points to: Path.is_dir / is_file's
        answers, from the listing's types. `named`: of the entries whose name it accepts only (a link's target is
        looked at only for those), as listed."""
        for e in self._listing:
            if named is not None and not named(e.name):
                continue
            try:
                yes = e.is_dir() if is_dir else e.is_file()
            except OSError:     # a link's stat failing otherwise than 'not found' (a loop): pathlib's answer
                yes = (self.root / e.name).is_dir() if is_dir else (self.root / e.name).is_file()
            if yes:
                yield self.root / e.name

    @cached_property
    def subfolders(self) -> list[Path]:
        """The folders directly in the folder a layout reads (a class, a split, a profile, an image folder), in
        name order: hidden ones (hidden_name) left out. An OSError listing the folder is the caller's to handle."""
        return sorted(self._of_kind(is_dir=True))

    @cached_property
    def class_folders(self) -> list[Path]:
        """The class folders of the folder read as an ImageFolder (read_folder, empty_class_folders): its visible
        subfolders, or in the split-folder layout those of each split folder (splits, in name order), listed through
        their views."""
        if self.splits:
            return [d for s in sorted(self.splits) for d in self.sub(self.root / s).subfolders]
        return self.subfolders

    @cached_property
    def holds_image(self) -> bool:
        """holds_image's answer for the folder. Where it was listed already (the look for imgcls outputs below a
        dataset's folder: outputs._output_below), the walk that stops at the first image starts from that listing,
        not listing the folder again, and where no image is directly in it goes on through the views of the folders
        below, their listings kept there for the read's walk to take (a split folder's class folders listed once);
        otherwise holds_image's walk, which lists no more of a folder than it needs."""
        return holds_image(self.root, view=self if "_listing" in self.__dict__ else None)

    @cached_property
    def csvs(self) -> list[Path]:
        """The visible top-level .csv files, in name order ([] where the folder cannot be listed)."""
        try:
            return sorted(self._of_kind(is_dir=False, named=lambda name: Path(name).suffix.lower() == ".csv"))
        except OSError:
            return []

    @staticmethod
    def _once(store: dict, csv: Path, read) -> object:
        """`read()`'s answer for `csv`, kept in `store`: asked once; a UserError is kept too, raised each time."""
        if csv not in store:
            try:
                store[csv] = read()
            except UserError as e:
                store[csv] = e
        got = store[csv]
        if isinstance(got, UserError):
            raise got
        return got

    def text(self, csv: Path, what: str = "CSV file") -> str:
        """The whole text of `csv` (the folder's CSV, the CSV given, or one --csv names), read from disk once for
        every look at it (its header, its first rows, its rows: the reader that follows the detection); what cannot
        be read is csv_text's UserError (`what`: as the first to ask named the file), raised each time it is
        asked."""
        return self._once(self._texts, Path(csv), lambda: csv_text(csv, what))

    def head(self, csv: Path) -> pd.DataFrame:
        """The first 20 rows of `csv` (one of the folder's files) as text: read once; what cannot be read as a CSV
        is read_csv's UserError, raised each time it is asked."""
        return self._once(self._heads, csv,
                          lambda: read_csv(csv, nrows=20, dtype=str, keep_default_na=False, text=self.text(csv)))

    @cached_property
    def splits(self) -> dict[str, str]:
        """split_folders' answer."""
        try:
            subdirs = [d.name for d in self.subfolders]
        except OSError:
            return {}
        if "train" not in subdirs or not all(d.lower() in SPLIT_FOLDERS for d in subdirs):
            return {}
        return {d: SPLIT_FOLDERS[d.lower()] for d in subdirs}

    @cached_property
    def profiles_root(self) -> Path | None:
        """The folder of the mask competition's profile folders: this one when most of its visible subfolders are
        <id>_<gender>_<race>_<age>, or its one visible subfolder when that one is (the competition's train/ holds
        train.csv and images/<profile>/...); None otherwise."""
        subdirs = self.subfolders
        if subdirs and most_of(sum(bool(PROFILE_DIR.match(d.name)) for d in subdirs), len(subdirs)):
            return self.root
        if (len(subdirs) == 1 and subdirs[0].name.lower() in CSV_IMAGE_FOLDERS
                and self.sub(subdirs[0]).profiles_root == subdirs[0]):
            return subdirs[0]
        return None

    def profiles_table_root(self, csv_path: Path) -> Path | None:
        """The profiles' folder when `csv_path` (a file in this folder) is the mask competition's train.csv (`path`
        = a profile folder's name, <id>_<gender>_<race>_<age>, under images/ beside it): what that train/ given
        whole reads; None otherwise."""
        root = self.profiles_root
        if root is None:
            return None
        cols = self.head(csv_path)
        if "path" not in cols.columns or cols.empty:
            return None
        names = [str(v).strip().strip("/") for v in cols["path"]]
        hits = sum(bool(PROFILE_DIR.match(n)) and (root / n).is_dir() for n in names)
        return root if most_of(hits, len(names)) else None

    @cached_property
    def listing_csvs(self) -> list[Path]:
        """Of the folder's CSVs, those with an image-path column (PATH_COLUMN_GUESSES) whose first 20 names (with
        the view's --ext added: _ext_added) are mostly files in it or in one of CSV_IMAGE_FOLDERS (csv_image_root):
        the CSVs that list its images (DACON's train.csv and test.csv beside train/ and test/)."""
        out = []
        for csv in self.csvs:
            try:
                table = self.head(csv)
            except UserError:
                continue
            col = next((g for g in PATH_COLUMN_GUESSES if g in table.columns), None)
            if col is not None and csv_image_root(self.root, _ext_added(table[col].tolist(), self.ext)) is not None:
                out.append(csv)
        return out

    @cached_property
    def image_tables(self) -> list[Path]:
        """The folder's CSVs that list images here: listing_csvs (DACON's train.csv and test.csv beside train/ and
        test/), and those whose names are files in one folder beside them (csv_images_subfolder: Kaggle's train.csv
        beside train_images/). What a bare step call names when no default input exists (pipeline.default_input)."""
        out = list(self.listing_csvs)
        for csv in self.csvs:
            if csv in out:
                continue
            try:
                table = self.head(csv)
                col = next((g for g in PATH_COLUMN_GUESSES if g in table.columns), None)
                if col is not None and csv_images_subfolder(self.root, _ext_added(table[col].tolist(), self.ext),
                                                            csv, self) is not None:
                    out.append(csv)
            except UserError:       # unreadable, or its names in several folders: not named
                continue
        return sorted(out)

    @cached_property
    def folder_csv(self) -> Path | None:
        """The competition CSV the folder carries (the mask competition's eval/: info.csv beside images/): its one
        visible top-level .csv file, when that lists images here (listing_csvs); None otherwise (no CSV, several,
        or one that lists no image here). Its rows, not the folder's files, are then the data: their ids and order
        are the submission's."""
        return self.csvs[0] if len(self.csvs) == 1 and self.listing_csvs else None

    @cached_property
    def lone_folder(self) -> LoneFolder | None:
        """The image folder (CSV_IMAGE_FOLDERS: images/, ...) this folder holds alone, no image beside it and no CSV
        listing its images (listing_csvs). Class folders in it (data/images/cat/..., data/images/dog/...): it is the
        folder whose subfolders are the classes, never one class named 'images' (images/cat/x.jpg), as
        profiles_root goes one level down to the profile folders. Images directly in it (the mask competition's
        eval/ without its info.csv): unlabeled test images named by their paths in that folder (xxx.jpg, as
        info.csv spells its ImageIDs), never one class named 'images', its images walked once, here; the folders
        are walked through their views (listed once: what the read's walk takes, or this one). None
        otherwise (images beside it, other folders, a CSV listing them: folder_csv's, or several, the user's pick;
        no image)."""
        try:
            subdirs = self.subfolders
        except OSError:
            return None
        if len(subdirs) != 1 or subdirs[0].name.lower() not in CSV_IMAGE_FOLDERS or self.listing_csvs:
            return None
        if any(True for _ in self._of_kind(is_dir=False, named=imgio.is_image_name)):
            return None
        folder = subdirs[0]
        if holds_image(folder, below=True, view=self):     # class folders in it: no walk
            return LoneFolder(folder, None, None)
        left_out = LeftOut()
        found = images_under(folder, left_out, self)
        return LoneFolder(folder, found, left_out) if found else None


def read_profiles(root: Path, age_bands: Sequence[int] = DEFAULT_AGE_BANDS, unread_images: str = "warn",
                  view: FolderView | None = None) -> pd.DataFrame:
    """The mask competition's layout: <id>_<gender>_<race>_<age>/<mask1-5|incorrect_mask|normal>.<ext>, one row per
    image. Folders and files of other names are left out in a warning; image files the walk leaves out (LeftOut:
    names not UTF-8, or without an image extension) are named in a warning, or with `unread_images="refuse"`
    (predict) refused in one line (LeftOut.say), as read_folder does. `view`: the detection's look at `root`
    (FolderView), its listing read from it, and the profile folders' listings it made walked, not listed again."""
    rows = []
    skipped = []
    left_out = LeftOut()
    view = view or FolderView(root)
    for d in view.subfolders:
        m = PROFILE_DIR.match(d.name)
        if not m:
            skipped.append(d.name)
            continue
        for p in images_under(d, left_out, view):
            mask = mask_from_stem(p.stem)
            if mask is None:
                skipped.append(_rel(p, root))
                continue
            rows.append({"path": _rel(p, root), "group": m["id"], "profile": d.name, "mask": mask,
                         "gender": GENDER_CLASSES.index(m["gender"].lower()), "race": m["race"],
                         "age": int(m["age"])})
    left_out.say(root, unread_images, None)
    if skipped:
        warn(f"{len(skipped)} folder(s)/file(s) under {root} do not follow <id>_<gender>_<race>_<age>/"
             f"<mask1-5|incorrect_mask|normal> and were left out, e.g. {skipped[0]}")
    df = pd.DataFrame(rows, columns=["path", "group", "profile", "mask", "gender", "race", "age"])
    df.insert(1, "label", "")
    return apply_profile_labels(df, age_bands) if len(df) else df


def _ext_added(names: Sequence[str], ext: str | None) -> list[str]:
    """A CSV's image names with --ext (`ext`, its dot optional) added to those without an image extension; as they
    are without one. What the folder of its images is judged by (csv_image_root) and what is looked for there."""
    if ext is None:
        return list(names)
    ext = ext if ext.startswith(".") else "." + ext
    return [n if imgio.is_image_name(n) else n + ext for n in names]


def _with_extension(names: list[str], root: Path) -> list[str]:
    """A CSV's image names (_ext_added: --ext added already) as files under root: an id without an image extension
    (Kaggle's `id` column) gets the first of COMMON_EXTENSIONS (also upper case) whose file exists under root; names
    that match nothing stay as they are (reported unreadable). A non-ASCII name is spelled as its file is
    (_file_named: NFC in the CSV, NFD on disk)."""
    out = []
    for name in names:
        ascii_file = name.isascii() and imgio.is_image_name(name)     # one spelling only: no lookup
        out.append(name if ascii_file else _file_named(root, name) or name)
    return out


def read_competition_csv(csv_path: Path, root: Path, opts: LayoutOptions,
                         view: FolderView | None = None) -> tuple[pd.DataFrame, Path]:
    """The rows of a competition CSV, and the folder their paths are relative to: `root`, or without --image-dir
    the folder under it where the names are found (csv_image_root). `view`: the look at the folder that detected
    the layout, whose text of the CSV is read (FolderView.text: the file is not read from disk again)."""
    text = view.text(csv_path) if view is not None else csv_text(csv_path)
    table = read_csv(csv_path, "CSV file", dtype=str, keep_default_na=False, text=text)
    cols = list(table.columns)

    def spaced(name: str) -> None:
        """A column named `name` but for spaces around it in the header (`path, label`): read as ' label', so the
        label column was not found (the data read unlabeled, or --label-col label refused as missing)."""
        hit = next((c for c in cols if c != name and c.strip() == name), None)
        if hit is not None:
            raise UserError(f"the header of {csv_path} has spaces around its column name '{hit}', so no column is "
                            f"named '{name}'; remove the spaces after its separators (a CSV's values are read as "
                            f"written, spaces included)")

    def need(col: str | None, flag: str, guesses: Iterable[str] = ()) -> str | None:
        if col is not None:
            if col not in cols:
                spaced(col)
                raise UserError(f"column '{col}' is not in {csv_path} (columns: {', '.join(cols)}); "
                                f"pass the right name with {flag}")
            return col
        for g in guesses:       # in their order: a spaced ' img_path' is not passed over for a later guess, 'id'
            if g in cols:
                return g
            spaced(g)
        return None

    path_col = need(opts.path_col, "--path-col", PATH_COLUMN_GUESSES)
    if path_col is None:
        raise UserError(f"cannot tell which column of {csv_path} holds image paths (columns: {', '.join(cols)}); "
                        f"pass --path-col NAME")
    label_col = need(opts.label_col, "--label-col", LABEL_COLUMN_GUESSES)
    no_groups = opts.group_col == NO_GROUPS
    group_col = None if no_groups else need(opts.group_col, "--group-col", GROUP_COLUMN_GUESSES)
    # a row naming no image would be read as the image folder itself (a folder, 'not a regular file'), and the
    # output checks would take the folder above it for an input image's: a malformed row, said as one
    empty = [i for i, p in enumerate(table[path_col].astype(str)) if _dot_slash_dropped(p.strip()) in ("", ".")]
    refuse_empty_cells(f"CSV file {csv_path}", text, empty, path_col, "image",
                       "every row names its image file: fill the cell in or drop the row")
    # the folder is judged by the names as they are looked for: with --ext added (test.csv's bare ids, test/*.jfif)
    names = _ext_added([_dot_slash_dropped(p) for p in table[path_col].astype(str)], opts.ext)
    if opts.image_dir is None:      # bare names whose files sit in images/ (the mask competition's eval/info.csv)
        root = csv_image_root(root, names) or csv_images_subfolder(root, names, csv_path, view) or root
    paths = _with_extension(names, root)
    listed, (root, paths) = paths, images_folder(root, paths)
    df = pd.DataFrame({"path": [Path(p).as_posix() for p in paths],
                       "label": table[label_col] if label_col else "",
                       "group": table[group_col] if group_col else ""})
    for c in cols:
        if c not in (path_col, label_col, group_col) and c not in df.columns:
            df[c] = table[c]
    if (path_col not in df.columns and path_col != "path") or (paths != listed and "source_id" not in df.columns):
        df["source_id"] = table[path_col]   # e.g. ImageID / id (or the paths as written), needed for submissions
    df.attrs[CSV_ROWS_READ] = table.attrs[CSV_ROWS_READ]    # a row each: named by the CSV's line (row_at)
    if group_col is not None and opts.group_col is None:     # said in load's line: it keeps rows together
        df.attrs[CSV_GROUPS_GUESSED] = group_col
    if label_col not in (None, "label") and opts.label_col is None:
        df.attrs[CSV_LABELS_GUESSED] = label_col
    return df, root


def images_folder(root: Path, paths: Sequence[str]) -> tuple[Path, list[str]]:
    """The deepest folder under `root` that holds every listed image, and the paths relative to it: the folder a
    CSV's images are read from. DACON's train.csv lists ./train/*.jpg beside itself, so train/ (not the CSV's
    folder, often the user's working folder) is what no output may be written under. `root` itself when the
    images share no deeper folder or a path leaves `root` (paths as given)."""
    full = [os.path.normpath(os.path.join(root, p)) for p in paths]
    try:
        common = os.path.commonpath([os.path.dirname(f) for f in full])
        below = os.path.relpath(common, root)
    except ValueError:          # no paths, or absolute and relative mixed
        return root, list(paths)
    if below == "." or below.split(os.sep)[0] == "..":
        return root, list(paths)
    return Path(common), [Path(os.path.relpath(f, common)).as_posix() for f in full]
