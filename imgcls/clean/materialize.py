"""--materialize: the kept images as an ImageFolder under OUT/images (hard links or copies; never the source)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from imgcls import manifest as mf
from imgcls.outputs import CLEAN_SUMMARY


# what --materialize HOW writes, in words ("images/ (copies of the kept images)"; it said "copys")
WRITTEN_AS = {"link": "hard links", "copy": "copies"}


def materialize_kept(df: pd.DataFrame, dest: Path, how: str) -> list[Path]:
    """Kept images as an ImageFolder under dest (hard links or copies; never touches the source). Names are unique
    by construction (case-insensitively, within each class folder): a second `img.png` of a class becomes
    `img_2.png`; labels are single folder names. Returns the files, in row order."""
    import shutil
    from imgcls.fsutil import atomic_path
    targets = _targets(df, dest)
    for p, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and (os.path.samefile(p, target) if how == "link" else
                                (not os.path.samefile(p, target) and _same_bytes(p, target))):
            continue        # already this link, or already a copy (a link an earlier --materialize link made is not)
        if how == "link":
            # a hard link shares the input's inode: made beside the target and renamed onto it, never chmod-ed. Of
            # the file a symlink names: Linux's link(2), which os.link calls, links the symlink itself, and a
            # relative one (git-annex's, DVC's) then points elsewhere from OUT/images, or nowhere
            import secrets
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
            try:
                os.link(os.path.realpath(p), tmp)
                os.replace(tmp, target)
                continue
            except OSError:
                if tmp.exists():
                    tmp.unlink()
        with atomic_path(target) as tmp:
            shutil.copyfile(p, tmp)
    return [t for _, t in targets]


def kept_files(df: pd.DataFrame, dest: Path) -> list[Path]:
    """The files materialize_kept writes under dest for the kept rows of `df` (what it returns), named before it
    writes them."""
    return [t for _, t in _targets(df, dest)]


def possible_targets(df: pd.DataFrame, dest: Path) -> list[Path]:
    """Every file materialize_kept may write under dest for the rows of `df`, whichever of them clean keeps: the
    names of all rows kept (a run keeping fewer gives each a name among these: the k-th image of a name gets the
    same or an earlier suffix)."""
    return [t for _, t in _targets(df.assign(keep=True), dest)]


def _targets(df: pd.DataFrame, dest: Path) -> list[tuple[Path, Path]]:
    """(image, its file under dest) for each kept row, in row order: materialize_kept's names."""
    from imgcls.fsutil import under
    kept = df[mf.kept(df)]
    taken: set[str] = set()
    targets = []
    for p, lab in zip(mf.image_paths(kept), kept["label"].astype(str)):
        folder = lab.replace("/", "_").replace("\\", "_").lstrip(".") or "unlabeled"
        stem, suffix = Path(p.name.lstrip(".") or "image").stem, p.suffix
        name, k = f"{stem}{suffix}", 1
        while f"{folder}/{name}".casefold() in taken:
            k += 1
            name = f"{stem}_{k}{suffix}"
        taken.add(f"{folder}/{name}".casefold())
        targets.append((p, under(dest, f"{folder}/{name}")))
    if len({t.as_posix().casefold() for _, t in targets}) != len(targets):   # guaranteed above; proven here
        raise RuntimeError("materialize: output names are not unique")
    return targets


# the earlier --materialize's images a clean does not keep, named in its --out before the set that no longer names
# them is placed and removed after they are (remove_stale): a run stopped or failing in between leaves it for the
# rerun, which reads it (earlier_materialized) whichever of the earlier and new set's files lie there
STALE_IMAGES = ".clean_stale_images.json"


def earlier_materialized(out: Path) -> set[str]:
    """The files (relative to `out`) an earlier `clean --materialize` wrote under out/images, by its manifest and
    clean_summary.json (read before this run replaces them), and those a clean stopped before it removed them left
    named in STALE_IMAGES: what a run that keeps other rows, or materializes nothing, removes. Empty when there was
    none or its records cannot be read."""
    import json
    from imgcls.errors import UserError
    try:
        stale = json.loads((out / STALE_IMAGES).read_text(encoding="utf-8"))
        names = {str(n) for n in stale} if isinstance(stale, list) else set()
    except (OSError, ValueError):
        names = set()
    try:
        summary = json.loads((out / CLEAN_SUMMARY).read_text(encoding="utf-8"))
        if not (summary.get("config") or {}).get("materialize"):
            return names
        old = mf.read_manifest_file(out / mf.MANIFEST_NAME)
        return names | materialized_names(out, [t for _, t in _targets(old, out / "images")])
    except (OSError, ValueError, AttributeError, UserError):
        return names


def name_stale(out: Path, stale: set[str]) -> None:
    """STALE_IMAGES written: the earlier images `stale` this run removes once its set is placed (remove_stale)."""
    from imgcls.fsutil import write_json
    if stale:
        write_json(out / STALE_IMAGES, sorted(stale))


def remove_stale(out: Path, stale: set[str]) -> int:
    """The earlier images `stale` removed from out/images (fsutil.remove_earlier), then their record; returns how
    many were there."""
    from imgcls.fsutil import remove_earlier
    gone = remove_earlier(out, stale)
    (out / STALE_IMAGES).unlink(missing_ok=True)
    return gone


def materialized_names(out: Path, files) -> set[str]:
    """materialize_kept's files under out/images as names relative to `out` (images/<label>/<file>), also where
    out/images is a link to a folder elsewhere (materialize_kept returns them resolved)."""
    images = (out / "images").resolve()
    return {f"images/{Path(f).relative_to(images).as_posix()}" for f in files}


def _same_bytes(a: Path, b: Path) -> bool:
    from imgcls.io import file_sha256
    return a.stat().st_size == b.stat().st_size and file_sha256(a) == file_sha256(b)
