"""Writing outputs safely: atomic replace with the process umask, never under the input folder, never outside the
output folder, and a writable destination checked before the long work; one process at a time where a folder or
a file is shared (exclusive_lock, imgcls's one flock)."""
from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Sequence

from imgcls.errors import UserError
from imgcls.options import choose_another

# the name atomic_path gives its temporary file: .<name>.<mkstemp's 8 random characters>.tmp<suffix>
_TMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^./]*)?$")
MIN_FREE_BYTES = 16 << 20      # a destination with less free space than this is reported as full


def fork_safe_lock() -> threading.Lock:
    """A module-level lock that a forked child (a worker pool's or DataLoader's worker, a caller's own os.fork) can
    take: every fork of the process waits for it and forks holding it, and parent and child each release it after.
    A plain lock another thread held at the fork stayed held for good in the child (the child has only the forking
    thread: a deadlock the first time it takes it), and the child got what the lock guards as it was mid-change.
    For short blocks that never fork (a fork from inside the block would wait for itself)."""
    lock = threading.Lock()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=lock.acquire, after_in_parent=lock.release, after_in_child=lock.release)
    return lock


_UMASK_LOCK = fork_safe_lock()     # no fork inside process_umask's set-and-restore: a child's umask is the real one
_PROC_STATUS = "/proc/self/status"  # Linux >= 4.7 shows the umask there: read without changing it
_UMASK_LINE = re.compile(rb"^Umask:\s*([0-7]+)\s*$", re.M)


def _umask_from_proc() -> int | None:
    """The umask from /proc/self/status's `Umask:` line; None where there is no such file or line."""
    try:
        with open(_PROC_STATUS, "rb") as f:
            found = _UMASK_LINE.search(f.read())
    except OSError:
        return None
    return int(found[1], 8) if found else None


def process_umask() -> int:
    """The process umask, read afresh each call (it may change during the process). From /proc/self/status where
    it shows it; elsewhere os.umask, which can only read it by setting it: set and restore under a lock (while it
    is set, another thread's new file gets that mode, not the umask's)."""
    mask = _umask_from_proc()
    if mask is not None:
        return mask
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain open() would give a new file: 0666 minus the umask (mkstemp's own files are 0600)."""
    return 0o666 & ~process_umask()


def file_stamp(path: str | os.PathLike) -> tuple[int, int]:
    """Which version of a file this is, from one stat (symlinks followed): its size and modification time in ns.
    The stamp every record of a file's version keeps (a manifest's bytes / mtime columns, the embedding cache's
    and checkpoint metadata's keys, preprocess's input stamps, a placing journal), each with its own extra fields.
    Raises OSError when the file cannot be stat'ed."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path` (a crash leaves no half file,
    and `remove_stale_temps` clears what a kill -9 left). The file gets the process umask's mode. A folder another
    process removes meanwhile (empty: a shared shard folder) is made again."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        # made inside the try: a Ctrl-C between mkstemp and the try (train's metrics.csv, written each epoch) left
        # the empty temporary file in the run folder
        for attempt in range(3):
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
                break
            except FileNotFoundError:
                # a shared folder another process removed, empty, since the mkdir (a cache's shard folder, which a
                # run that merged its shards removes): made again; once the file is in it, no rmdir can take it
                if attempt == 2:
                    raise
                path.parent.mkdir(parents=True, exist_ok=True)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def rename_new(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename `src` (a file or a folder) to `dst` where nothing is there, never over what is: FileExistsError when
    something is, made there meanwhile too (os.rename replaces an empty folder, os.replace a file). Linux's
    renameat2(RENAME_NOREPLACE) looks and renames in one step; where it is missing (another system, a file system
    without it), a look just before the rename."""
    import ctypes
    import errno
    rename2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if rename2 is not None:
        at_cwd, noreplace = -100, 1         # AT_FDCWD, RENAME_NOREPLACE
        if rename2(at_cwd, os.fsencode(src), at_cwd, os.fsencode(dst), noreplace) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), str(dst))     # EEXIST: FileExistsError
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)


def create_sqlite_file(db: str | os.PathLike) -> Path:
    """Create a local SQLite store's missing database file (and its folder) empty, so it has the umask's mode:
    SQLite creates it 0644 whatever the umask (under 002 the group sharing a tune study or an MLflow store could
    not write it), and its journal files take the database file's mode. An empty file is an empty database."""
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        with open(db, "a"):
            pass
    return db


def lock_file(path: str | os.PathLike) -> Path:
    """The lock file beside `path` that lock_beside takes, `<file>.lock`: whoever removes `path` for good removes
    it too (an older cache file, a study's database)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextmanager
def lock_beside(path: str | os.PathLike) -> Iterator[None]:
    """The turn that processes sharing the file `path` take to change it: an exclusive lock on its lock_file (made,
    with its folder, where missing). A shared cache file's writer holds it while it reads the file as it is now,
    merges its own entries in and writes it (two cleans of one cache folder each wrote theirs and the second write
    dropped the first's); processes opening a new local SQLite store at the same moment (a tune study's study.db,
    an MLflow mlflow.db) hold it while they create its tables (else each failed on the other's: a UNIQUE
    constraint, MLflow's 'table _alembic_tmp_... already exists'). On a file system that takes no flock
    (NO_LOCKS) the block runs unlocked, as before the lock (raising there lost a pass's work)."""
    lock = lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock, create=True, unlocked=lambda e: None):
        yield


# what flock raises on a file system that takes no such lock: ENOLCK / EOPNOTSUPP / ENOSYS, and EBADF on NFS, whose
# client emulates flock with a POSIX lock that an exclusive lock needs a descriptor open for writing for (a folder
# never is)
NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EBADF})


class LockBusy(Exception):
    """exclusive_lock(wait=False) found the lock held: `holder` is the holding process's id where the kernel says
    (lock_holders), else None."""

    def __init__(self, path: str | os.PathLike, holder: int | None):
        super().__init__(f"{path} is locked" + (f" by process {holder}" if holder else ""))
        self.path, self.holder = path, holder


def lock_holders(path: str | os.PathLike) -> list[int] | None:
    """The ids of the processes holding a flock on `path` (a folder or a file) now, read from /proc/locks rather
    than by taking the lock, which could make a holder starting at that instant fail; [] when none does, None where
    the kernel does not list its locks there (not Linux) or `path` cannot be stat'ed. An id of 0 is a holder in
    another pid namespace (a container's): it is held, by a process we cannot name."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii") as f:
            locks = f.read()
    except OSError:
        return None
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    fields = (line.split() for line in locks.splitlines())     # "1: FLOCK ADVISORY WRITE pid dev:ino 0 EOF"
    # a waiter's line reads "1: -> FLOCK ...": only the holders' have FLOCK second
    return [int(f[4]) if f[4].isdigit() else 0 for f in fields if len(f) > 5 and f[1] == "FLOCK" and key in f]


@contextmanager
def exclusive_lock(path: str | os.PathLike, wait: bool = True, waiting: Callable[[int | None], object] | None = None,
                   create: bool = False, unlocked: Callable[[OSError], object] | None = None) -> Iterator[None]:
    """The one flock of imgcls: an exclusive lock on `path` for the block, released when it ends (an exception
    too), and by the kernel when the process ends, kill -9 included. `path`: a folder, locked itself (no file left
    behind to clean), or with `create` a lock file, made where missing with the umask's mode as open() makes one.
    Taken at once where free; else with `wait` it waits for the holder (`waiting(holder's id or None)` is called
    once first: the line that says so), and without it raises LockBusy. The descriptor is close-on-exec (a program
    the holder starts does not keep the lock), and the lock is released, not only closed, at the end: a child the
    holder forked meanwhile (a DataLoader's worker) shares the descriptor and would hold it on. On a file system
    that takes no flock (NO_LOCKS: NFS's EBADF for a folder, ENOLCK) it raises the OSError, or with `unlocked`
    calls `unlocked(the error)` (a warning, or nothing) and runs the block without the lock."""
    import fcntl
    flags = os.O_WRONLY | os.O_CREAT if create else os.O_RDONLY    # NFS locks a file only open for writing
    fd = os.open(path, flags | os.O_CLOEXEC, 0o666)
    owner = None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            owner = os.getpid()
        except BlockingIOError:
            holders = lock_holders(path) or [0]
            holder = holders[0] or None
            if not wait:
                raise LockBusy(path, holder) from None
            if waiting is not None:
                waiting(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
            owner = os.getpid()
        except OSError as e:
            if unlocked is None or e.errno not in NO_LOCKS:
                raise
            unlocked(e)
        yield
    finally:
        try:
            if owner == os.getpid():    # a forked child that leaves the block must not release its parent's lock
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


# a temporary file or folder imgcls fills from data in memory and renames into place within seconds (atomic_path's
# files, a new tune study's hidden folder): one untouched this long is what a killed run left (kill -9, the OOM
# killer), never a live process's, even in a folder several processes share (clean and split on one cache,
# torchrun's ranks writing shards, two tune processes opening one study)
STALE_TEMP_SECONDS = 3600


def check_file_name_encoding() -> None:
    """Before a command's work: file names must be read as UTF-8 text (layouts.utf8_name). Python reads them in the
    locale's encoding, UTF-8 under a C / POSIX locale too (its UTF-8 mode) but not where PYTHONUTF8=0 turns that off
    or the locale names another encoding (ko_KR.EUC-KR, en_US.ISO-8859-1): a UTF-8 name such as 고양이/1.png was then
    called "not UTF-8" and left out (a whole class gone, with a warning whose fix, convmv, was wrong), and a
    manifest's such path was a UnicodeEncodeError traceback in the step that opened it. One line naming the
    setting and the fix instead, exit 2."""
    import codecs
    import sys

    enc = sys.getfilesystemencoding()
    if codecs.lookup(enc).name == "utf-8":
        return
    setting = next((f"{v}={os.environ[v]}" for v in ("LC_ALL", "LC_CTYPE", "LANG") if os.environ.get(v)),
                   "the locale")
    if os.environ.get("PYTHONUTF8") is not None:
        setting += f", PYTHONUTF8={os.environ['PYTHONUTF8']}"
    raise UserError(f"Python reads file names as {enc} here, not UTF-8 ({setting}): image names that are not ASCII "
                    f"(Korean ones) would be misread or left out; run with PYTHONUTF8=1 (or a UTF-8 locale such as "
                    f"LC_ALL=C.UTF-8)")


def is_temp_name(name: str) -> bool:
    """A name atomic_path gives its temporary files."""
    return bool(_TMP_NAME.match(name))


def remove_stale_temps(folder: str | os.PathLike, names: list[str] | None = None, suffix: str = "",
                       older_than: float | None = None) -> list[Path]:
    """Delete the temporary files an interrupted atomic write (kill -9) left under `folder`, recursively (regular
    files only); returns them. Only for a folder this step owns (its --out). `names`: only the temporary files of
    these file names, directly in `folder` (a step whose --out is one file beside the user's others). `suffix`:
    only temporary names ending so; `older_than` (seconds): only those untouched that long, where a concurrent
    process may be writing one now (a shared cache: imgcls.embed.open_cache_folder)."""
    import time
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    before = None if older_than is None else time.time() - older_than
    walk = os.walk(folder) if names is None else [(str(folder), [], os.listdir(folder))]
    for dirpath, _, filenames in walk:
        for f in filenames:
            p = Path(dirpath, f)
            if not is_temp_name(f) or not f.endswith(suffix) or \
                    (names is not None and not any(f.startswith(f".{n}.") for n in names)):
                continue
            try:
                if p.is_file() and not p.is_symlink() and (before is None or p.stat().st_mtime < before):
                    p.unlink()
                    removed.append(p)
            except FileNotFoundError:       # another process swept it meanwhile
                continue
    return removed


def folders_to_make(folder: str | os.PathLike) -> list[Path]:
    """The folders `folder`'s mkdir(parents=True) makes: it and those above it that are not there, deepest first.
    Taken before the mkdir, it is what remove_made removes again where the step wrote nothing into them."""
    folder = Path(folder)
    return [d for d in (folder, *folder.parents) if not os.path.lexists(d)]


def remove_made(made: Sequence[str | os.PathLike]) -> None:
    """Remove the folders a step made (folders_to_make's list, deepest first) that are still empty: a step stopped
    (Ctrl-C, an error) before it wrote anything leaves no empty --out behind. rmdir removes only an empty folder; the
    first that holds anything (the user's file, a file the step placed) stops it, so the folders above it stay."""
    for d in made:
        try:
            Path(d).rmdir()
        except OSError:
            break


def remove_earlier(out: str | os.PathLike, names) -> int:
    """Delete files an earlier run of a step wrote under its `out` that this run does not write (`names`: paths
    relative to `out`): regular files proven to lie under `out` only (a name that leaves it, a link or a folder is
    left alone); folders they leave empty go too. Returns how many files were removed."""
    gone = 0
    out_r = Path(out).resolve()
    for n in sorted(names):
        if safe_relative(n) is None:
            continue
        try:
            p = under(out_r, n)
        except UserError:
            continue
        if p.is_file() and not p.is_symlink():
            p.unlink()
            gone += 1
            parent = p.parent
            while parent != out_r and out_r in parent.parents:
                try:
                    parent.rmdir()          # only an empty folder
                except OSError:
                    break
                parent = parent.parent
    return gone


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def write_table(df, path: str | os.PathLike, **csv_style) -> Path:
    """The one table writer: a DataFrame as CSV (Parquet when `path` ends in .parquet), without its index, atomically
    (a temporary file beside `path`, renamed onto it). `csv_style`: to_csv's options where the CSV is written as
    another is (layouts.csv_style: predict's submission.csv as its sample submission)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False, **csv_style)
    return path


def is_within(child: str | os.PathLike, parent: str | os.PathLike) -> bool:
    # os.path.realpath, not Path.resolve: a symlink loop is a path like any other here, not a RuntimeError
    return _under(Path(os.path.realpath(child)), Path(os.path.realpath(parent)))


def _under(child: Path, parent: Path) -> bool:
    """`child` is `parent` or lies below it (both already resolved)."""
    return child == parent or parent in child.parents


def check_output_location(out: str | os.PathLike, *roots: str | os.PathLike | None,
                          images: list | None = None, owns: bool = True, flag: str = "--out") -> Path:
    """Refuse an output path inside a folder whose images we read: users' data is never written to.

    `roots` are the image roots of the input (a manifest's roots, or the folder given). `images`, the input's image
    paths: an --out inside the real folder of an input image or of a folder between it and its root is refused too
    (a class folder symlinked from elsewhere: `SRC/cat -> raw/cat` and --out raw/cat/x); each folder is resolved
    once, so 100k images in a few hundred folders cost a few hundred realpath calls. `owns` (with `images`): the
    step owns its whole --out folder (writes reports and copies there, sweeps an interrupted run's temporary files
    from it), so an --out that holds an input folder, or any input image once symlinks are resolved, is refused as
    well; a step that writes only its own files into --out (split's table, predict's outputs) passes owns=False."""
    out = Path(out)
    for root in roots:
        if root is not None and is_within(out, root):
            raise UserError(f"output {out} is inside the input folder {root}; "
                            f"choose {flag} outside it (imgcls never writes under its input)")
    if images is None:
        return out
    for root in roots:
        if owns and root is not None and is_within(root, out):
            raise UserError(f"the input folder {root} is inside {flag} {out}; choose {flag} outside the input "
                            f"(this step writes and tidies its whole {flag} folder)")
    out_r = Path(os.path.realpath(out))
    resolved = _FolderCache()           # each folder resolved once: thousands of images share a few folders
    heads: dict[str, bool] = {}         # folder as read -> its real folder lies in out_r (so does each image in it)
    inside = []
    for p in images:
        head, name = os.path.split(os.fspath(p))
        whole = heads.get(head)
        if whole is None:               # once per folder: per image it was 0.24 s of CPU at 16,800 images
            whole = heads[head] = owns and _under(resolved(head), out_r)
        if not owns:
            continue
        if os.path.islink(p):           # a symlinked image: where it points
            if _under(Path(os.path.realpath(p)), out_r):
                inside.append(p)
        elif whole or (name == out_r.name and resolved(head) / name == out_r):     # or it is out_r itself
            inside.append(p)
    if inside:
        raise UserError(f"{len(inside)} input image(s) lie inside {flag} {out}, e.g. {inside[0]}; choose an "
                        f"{flag} that holds none of the inputs (imgcls never writes over its input)")
    folder = _input_folder_holding(out_r, heads, roots, resolved)
    if folder is not None:
        raise UserError(f"output {out} is inside the input folder {folder[0]} (the real folder of {folder[1]}); "
                        f"choose {flag} outside it (imgcls never writes under its input)")
    return out


class _FolderCache(dict):
    """folder (as read) -> its real path, each resolved once (os.path.realpath)."""

    def __call__(self, head: str) -> Path:
        key = os.path.abspath(head or ".")
        if key not in self:
            self[key] = Path(os.path.realpath(key))
        return self[key]


def _input_folder_holding(out_r: Path, folders, roots, resolved: _FolderCache) -> tuple[Path, str] | None:
    """(real folder, folder as read) of the first input folder the resolved `out_r` lies in: each of `folders` (those
    holding input images) and those above it up to its root (symlinks resolved, through `resolved`); None when there
    is none."""
    tops = {os.path.abspath(r) for r in roots if r is not None}
    seen: set[str] = set()
    for head in sorted(folders):
        head = os.path.abspath(head or ".")
        while head not in seen:
            seen.add(head)
            real = resolved(head)
            if _under(out_r, real):
                return real, head
            up = os.path.dirname(head)
            # up to the image's root (its own folder only, for an image outside every root)
            if head in tops or up == head or not any(_under(Path(up), Path(t)) for t in tops):
                break
            head = up
    return None


def did_you_mean(path: str | os.PathLike, also: Sequence[str | os.PathLike] = ()) -> str:
    """' (did you mean outputs/runs/effnet-2?)' when `path` does not exist (or is a file where a folder goes) and
    its folder holds other names close to its own (a typed run or file name), else ''. `also`: folders a bare name
    may have meant (outputs/runs for `imgcls predict effnet-2`), searched too when `path` is a bare name."""
    import difflib
    path = Path(path)
    if not path.name:
        return ""
    cands = []
    for folder in dict.fromkeys([path.parent, *(Path(f) for f in also if len(path.parts) == 1)]):
        try:
            cands += [folder / p.name for p in folder.iterdir()] if folder.is_dir() else []
        except OSError:
            continue
    cands = [c for c in cands if os.path.abspath(c) != os.path.abspath(path)]     # never the path itself
    close = difflib.get_close_matches(path.name, [c.name for c in cands], n=3, cutoff=0.6)
    picked = [c for name in dict.fromkeys(close) for c in cands if c.name == name][:3]
    return f" (did you mean {' or '.join(map(str, picked))}?)" if picked else ""


def check_output_not_source(out: str | os.PathLike, folders, flag: str = "--out") -> None:
    """Refuse an --out that is one of the run or ensemble folders a step reads (`folders`): its report.html, and a
    k-fold run's oof_predictions.csv, would be overwritten. A folder inside one (export's RUN/onnx) is fine."""
    real = os.path.realpath(out)
    for folder in folders:
        if os.path.realpath(folder) == real:
            raise UserError(f"{flag} {out} is the folder of {folder}, which this step reads: its report and "
                            f"predictions would be overwritten; {choose_another(flag)}, e.g. {Path(folder) / 'pred'}")


def check_not_replacing(outputs, read: Sequence[str | os.PathLike], flag: str = "--out") -> None:
    """Refuse output files that are files this step reads (`read`: a competition's train.csv, its sample
    submission): writing one would replace the user's own table with imgcls's, symlinks resolved."""
    files = {os.path.realpath(f): f for f in read if f}
    for o in outputs:
        f = files.get(os.path.realpath(o))
        if f is not None:
            what = str(o) if os.fspath(o) == os.fspath(f) else f"{o} (that is {f})"
            raise UserError(f"{flag}: {what} is a file this step reads; writing it would replace your own file; "
                            f"{choose_another(flag)}")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)     # False on a read-only mount too (EROFS)


def check_writable(out: str | os.PathLike, kind: str = "dir", flag: str = "--out",
                   example: str = "splits.csv", another: str = "give another path") -> Path:
    """One check for every writing command, before the long work: `out` (a folder, or with kind='file' one file
    written beside its reports) must be creatable and writable, and its disk must not be full. `example`: the file
    name the error suggests inside a folder given where a file goes; `another`: how the user gives another path
    where it is no flag (the cache folder: IMGCLS_CACHE)."""
    from imgcls.parallel import refuse_while_a_worker_imports_main
    refuse_while_a_worker_imports_main()       # before any step's work: not in a worker importing the script
    if kind == "file" and os.fspath(out).endswith(("/", os.sep)) and not Path(out).is_dir():
        # a trailing slash names a folder, which Path drops: `--out data/splits/` wrote a file named data/splits
        raise UserError(f"{flag} {os.fspath(out)} names a folder, where a file goes; give a file path such as "
                        f"{Path(out) / example}")
    out = Path(out)
    if kind == "dir" and out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is an existing file, not a folder; give a folder path")
    if kind == "file" and out.is_dir():
        raise UserError(f"{flag} {out} is an existing folder; give a file path such as {out / example}")
    # the nearest folder that exists: where the first mkdir / file will be made
    probe = out if (kind == "dir" and out.is_dir()) else out.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{flag} {out} lies under {probe}, which is a file, not a folder; {another}")
    if not _writable(probe):
        raise UserError(f"{flag} {out} is not writable ({probe} is read-only or not yours); {another}")
    try:
        st = os.statvfs(probe)
    except OSError:
        return out
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        raise UserError(f"{flag} {out} is on a full disk ({free // 1024} KiB free at {probe}); free space or "
                        f"{another}")
    return out


def check_folder_name(name, where: str, example: str, flag: str = "--name") -> None:
    """A name a step makes a folder of under `where` must be one plain path component (`--name ../..` would write
    anywhere): else one line naming the flag and an `example`."""
    if (not isinstance(name, str) or name.strip() in ("", ".", "..") or "/" in name or "\\" in name
            or "\0" in name or Path(name).name != name):
        raise UserError(f"{flag} {name!r} is not a plain folder name; give one path component such as {example} "
                        f"(written under {where})")


def safe_relative(name: str) -> PurePosixPath | None:
    """`name` as a relative POSIX path that stays below its base folder (no absolute part, no '..' after
    normalising, no empty name), or None when it would leave it."""
    text = str(name).replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = []
    for part in PurePosixPath(text).parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return PurePosixPath(*parts) if parts else None


def under(base: str | os.PathLike, rel: str | os.PathLike) -> Path:
    """base / rel, proven to lie under base after resolving symlinks; raises UserError otherwise."""
    base_r = Path(base).resolve()
    target = (base_r / rel).resolve()
    if base_r not in target.parents:
        raise UserError(f"output name {rel} would be written outside {base} (at {target}); refusing")
    return target


def under_all(base: str | os.PathLike, rels: list[str]) -> list[Path]:
    """`under` for many relative paths without '..' / absolute parts (fsutil.safe_relative's): each distinct parent
    folder is resolved once (a symlinked folder inside base that leads out of it is refused)."""
    base_r = Path(base).resolve()
    seen: dict[str, Path] = {}
    out = []
    for rel in rels:
        if safe_relative(rel) is None or safe_relative(rel).as_posix() != PurePosixPath(rel).as_posix():
            raise UserError(f"output name {rel} is not a plain relative path; refusing")
        parent, name = os.path.split(rel)
        if parent not in seen:
            seen[parent] = under(base_r, parent) if parent else base_r
        target = seen[parent] / name
        if target.is_symlink():
            target = under(base_r, rel)
        out.append(target)
    return out
