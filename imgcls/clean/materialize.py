"""--materialize: the kept images as an ImageFolder under OUT/images (hard links or copies; never the source)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from imgcls import manifest as mf


# what --materialize HOW writes, in words ("images/ (copies of the kept images)"; it said "copys")
WRITTEN_AS = {"link": "hard links", "copy": "copies"}


def materialize_kept(df: pd.DataFrame, dest: Path, how: str) -> list[Path]:
    """Kept images as an ImageFolder under dest (hard links or copies; never touches the source). Names are unique
    by construction (case-insensitively, within each class folder): a second `img.png` of a class becomes
    `img_2.png`; labels are single folder names. Returns the files, in row order."""
    import shutil
    from imgcls.fsutil import atomic_path, under
    kept = df[df["keep"].astype(bool)]
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
    for p, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and (os.path.samefile(p, target) or (how == "copy" and _same_bytes(p, target))):
            continue
        if how == "link":
            # a hard link shares the input's inode: made beside the target and renamed onto it, never chmod-ed
            import secrets
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
            try:
                os.link(p, tmp)
                os.replace(tmp, target)
                continue
            except OSError:
                if tmp.exists():
                    tmp.unlink()
        with atomic_path(target) as tmp:
            shutil.copyfile(p, tmp)
    return [t for _, t in targets]


def _same_bytes(a: Path, b: Path) -> bool:
    from imgcls.io import file_sha256
    return a.stat().st_size == b.stat().st_size and file_sha256(a) == file_sha256(b)
