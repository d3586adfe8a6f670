"""`imgcls clean`: exact and near duplicates, out-of-domain images, undersampling. Nothing is deleted: the manifest
gets `keep`, `reason`, `dup_group`, `duplicate_of`, `ood_score`, `label_conflict`."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from imgcls import links
from imgcls import manifest as mf
from imgcls.clean.ood import DETECTORS
from imgcls.clean.sampling import METHODS as UNDERSAMPLE_METHODS
from imgcls.console import info
from imgcls.device import device_option
from imgcls.errors import UserError
from imgcls.fsutil import check_output_location, check_writable, remove_stale_temps, write_json
from imgcls.options import check, option, seed_option
from imgcls.parallel import check_workers
from imgcls.pipeline import PIPELINE

# Defaults chosen on openclipart_dirty (bench/clean_quality.py, docs/BENCHMARKS.md); the near-duplicate definition
# and its defaults are imgcls.links', each out-of-domain detector's threshold is its own (imgcls.clean.ood)
DEFAULT_OOD_METHOD = "photo-style"
DEFAULT_OUT = dict(PIPELINE)["clean"]
MATERIALIZE = ("link", "copy")
CONFLICT_POLICIES = ("majority", "drop", "keep-first")
DEFAULT_OOD_MAX_SHARE = 0.2       # a detector flagging more than this share of the set stops the run (--force)
OOD_METHODS = tuple(d.name for d in DETECTORS)
SWEEP = (0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.00)


def _per_method(table: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in table.items())


DUPS, OOD, SAMPLING, EMBED, RUNTIME = "Duplicates", "Out of domain", "Undersampling", "Embeddings", "Runtime"


@dataclass
class CleanConfig:
    """Every option of `imgcls clean` but the input / output paths (imgcls.options: default, choices, range, help)."""
    dedup: bool = option(True, panel=DUPS, flags=("--dedup/--no-dedup",), help="Exact + near duplicate stage.")
    near_dup: bool = option(True, panel=DUPS, flags=("--near-dup/--exact-only",),
                            help="Near duplicates (embeddings) besides exact (sha256) ones.")
    dup_method: str = links.dup_method_option(DUPS)
    dup_threshold: float | None = links.dup_threshold_option(DUPS)
    dup_candidates: float = links.dup_candidates_option(DUPS)
    conflicts: str = option("majority", panel=DUPS, choices=CONFLICT_POLICIES,
                            help="Duplicate groups spanning labels: majority (keep the majority label's member, "
                                 "none on a tie), drop (drop all), keep-first (keep one per label).")
    ood: bool = option(True, panel=OOD, flags=("--ood/--no-ood",), help="Out-of-domain stage.")
    ood_method: str = option(DEFAULT_OOD_METHOD, panel=OOD, choices=OOD_METHODS,
                             help="Out-of-domain detector (README: what each measures).")
    ood_threshold: float | None = option(None, panel=OOD, none=_per_method({d.name: d.threshold for d in DETECTORS}),
                                         help="Score at or above which an image is out of domain.")
    ood_contamination: float | None = option(None, panel=OOD, lo=0, hi=1, lo_open=True, hi_open=True,
                                             help="Instead of a threshold: flag this share of images.")
    ood_max_share: float = option(DEFAULT_OOD_MAX_SHARE, panel=OOD, lo=0, hi=1,
                                  help="A threshold that flags more than this share of the images stops the run "
                                       "(asks for --ood-contamination or --force).")
    force: bool = option(False, panel=OOD, flags=("--force",),
                         help="Accept an out-of-domain result that flags more than --ood-max-share.")
    undersample: str | None = option(None, panel=SAMPLING, choices=UNDERSAMPLE_METHODS,
                                     help="Keep at most --max-per-class rows per class.")
    max_per_class: int | None = option(None, panel=SAMPLING, lo=1, help="Cap per class for --undersample.")
    embedder: str = option(links.DEFAULT_EMBEDDER, panel=EMBED, help="timm model for embeddings.")
    embedder_weights: str | None = option(None, panel=EMBED, cli_type=Optional[Path], from_cli=str,
                                          help="Weight file for --embedder.")
    embed_size: int = option(links.DEFAULT_EMBED_SIZE, panel=EMBED, lo=16, hi=2048, help="Embedding input size (px).")
    device: str = device_option(RUNTIME)
    seed: int = seed_option(RUNTIME)
    cache_dir: str | None = option(None, cli=False, help="Embedding cache folder (default: beside the output).")

    materialize: str | None = option(None, panel="Output", choices=MATERIALIZE,
                                     help="Kept images as an ImageFolder under OUT/images: hard links or copies.")

    def validate(self) -> None:
        """Choices and ranges (imgcls.options.check) and the options that need each other; before any scan."""
        check(self)
        if self.undersample and not self.max_per_class:
            raise UserError("--undersample needs --max-per-class N")

    def near_duplicates(self) -> links.NearDuplicates:
        """The near-duplicate definition these options choose (shared with split)."""
        return links.NearDuplicates(self.dup_method, self.dup_threshold, self.dup_candidates, self.embedder,
                                    self.embedder_weights, "--embedder-weights", self.embed_size, self.device,
                                    self.cache_dir)


def _keep_order(df: pd.DataFrame, idx: list[int]) -> list[int]:
    """Which twin is kept first: largest resolution, then path order."""
    area = (pd.to_numeric(df["width"], errors="coerce").fillna(0) * pd.to_numeric(df["height"], errors="coerce")
            .fillna(0)).to_numpy()
    paths = df["path"].to_numpy()
    return sorted(idx, key=lambda i: (-area[i], paths[i]))


def exact_pairs(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(first row, later row) for every readable row whose content hash an earlier readable row has."""
    return links.exact_pairs(df["sha256"], valid=(df["error"] == "").to_numpy())


def mark_duplicates(df: pd.DataFrame, emb: np.ndarray | None, cfg: CleanConfig,
                    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """Group exact (sha256) and near (score >= threshold) copies; keep one per group (or per label). `pairs` are
    precomputed scored pairs (links.NearDuplicates.scored_pairs), e.g. to try several thresholds."""
    check(cfg, ["dup_method"])
    definition = cfg.near_duplicates()
    n = len(df)
    ok = (df["error"] == "").to_numpy()
    sha = df["sha256"].to_numpy()
    ei, ej = exact_pairs(df)
    if cfg.near_dup and (emb is not None or pairs is not None):
        pi, pj, ps = pairs if pairs is not None else definition.scored_pairs(df, emb)
        keep = (ps >= definition.cut) & ok[pi] & ok[pj]
        ei, ej = np.r_[ei, pi[keep]], np.r_[ej, pj[keep]]
    gid = links.components(n, ei, ej)
    labels = df["label"].astype(str).to_numpy()
    col = {c: df.columns.get_loc(c) for c in ("keep", "reason", "duplicate_of")}
    for g, members in pd.Series(range(n)).groupby(gid):
        idx = [i for i in members.tolist() if ok[i]]
        if len(idx) < 2:
            continue
        order = _keep_order(df, idx)
        keepers, conflict = conflict_keepers(order, labels, cfg.conflicts)
        name = f"d{order[0]:06d}"
        df.loc[df.index[idx], "dup_group"] = name
        df.loc[df.index[idx], "label_conflict"] = conflict
        kept = set(keepers.values())
        for i in order:
            if i in kept:
                continue
            twin = keepers.get(labels[i])
            df.iat[i, col["keep"]] = False
            if twin is None:          # its label lost the group (minority or tie): no twin of its own label kept
                df.iat[i, col["reason"]] = "label_conflict"
                df.iat[i, col["duplicate_of"]] = df["path"].iat[next(iter(kept))] if kept else ""
            else:
                df.iat[i, col["reason"]] = "exact_duplicate" if sha[i] == sha[twin] else "near_duplicate"
                df.iat[i, col["duplicate_of"]] = df["path"].iat[twin]
    return df


def conflict_keepers(order: list[int], labels: np.ndarray, policy: str) -> tuple[dict[str, int], bool]:
    """{label: row kept for it} for one duplicate group (rows in keep order) and whether it spans labels.
    One label: its first row. Across labels, `majority`: the first row of the label most members carry, none on a
    tie; `drop`: none; `keep-first`: the first row of each label (no label is decided for the user)."""
    from collections import Counter
    counts = Counter(labels[i] for i in order)
    if len(counts) == 1:
        return {labels[order[0]]: order[0]}, False
    if policy == "drop":
        return {}, True
    if policy == "keep-first":
        keepers: dict[str, int] = {}
        for i in order:
            keepers.setdefault(labels[i], i)
        return keepers, True
    (top, n1), (_, n2) = counts.most_common(2)
    if n1 == n2:
        return {}, True
    return {top: next(i for i in order if labels[i] == top)}, True


def conflict_table(df: pd.DataFrame) -> list[dict]:
    """One row per duplicate group spanning labels: its labels with their counts and what was kept (the report)."""
    rows = []
    sub = df[df["label_conflict"].astype(bool) & (df["dup_group"] != "")]
    for g, grp in sub.groupby("dup_group", sort=True):
        counts = grp["label"].astype(str).value_counts()
        kept = grp[grp["keep"].astype(bool)]
        rows.append({"dup_group": g, "labels": ", ".join(f"{k} x{v}" for k, v in counts.items()),
                     "kept": ", ".join(f"{p} ({lab})" for p, lab in zip(kept["path"], kept["label"]))
                     or "none (tie or --conflicts drop)",
                     "removed": ", ".join(grp.loc[~grp["keep"].astype(bool), "path"])})
    return rows


def pixel_matrix(df: pd.DataFrame, size: int = 32) -> np.ndarray:
    from imgcls.console import progress_bar
    from imgcls.io import ImageReadError, load_rgb
    out = np.full((len(df), size * size * 3), np.nan, np.float32)
    with progress_bar("pixels", len(df)) as advance:
        for i, (p, err) in enumerate(zip(mf.image_paths(df), df["error"])):
            if not err:
                try:
                    out[i] = np.asarray(load_rgb(p, draft=(size, size)).resize((size, size)), np.float32).ravel() / 255
                except ImageReadError:
                    pass
            advance()
    return out


def check_ood_share(flagged: np.ndarray, readable: np.ndarray, cfg: CleanConfig) -> None:
    """A detector that flags more than --ood-max-share of the readable images is more likely wrong than the data:
    stop (nothing written) unless the share was asked for (--ood-contamination) or accepted (--force)."""
    n = int(readable.sum())
    share = float(flagged.sum()) / n if n else 0.0
    if share > cfg.ood_max_share and not cfg.ood_contamination and not cfg.force:
        raise UserError(f"--ood-method {cfg.ood_method} flags {int(flagged.sum())} of {n} images ({share:.0%}, more "
                        f"than --ood-max-share {cfg.ood_max_share:.0%}); nothing written. Flag a share with "
                        f"--ood-contamination 0.05, raise --ood-threshold, or pass --force to accept it")


def undersample(df: pd.DataFrame, emb: np.ndarray | None, method: str, max_per_class: int, seed: int) -> pd.DataFrame:
    """Mark rows beyond --max-per-class per label as `undersampled` (imbalanced-learn on the embeddings)."""
    from imgcls.clean.sampling import select
    live = np.flatnonzero(df["keep"].to_numpy() & (df["label"] != "").to_numpy())
    chosen = select(emb[live] if emb is not None else None, df["label"].to_numpy()[live], method, max_per_class, seed)
    drop = np.setdiff1d(live, live[chosen])
    df.loc[df.index[drop], "keep"] = False
    df.loc[df.index[drop], "reason"] = "undersampled"
    return df


def run_clean(src: str | os.PathLike, out: str | os.PathLike = DEFAULT_OUT, cfg: CleanConfig | None = None,
              opts: mf.LayoutOptions | None = None, workers: int = 1, materialize: str | None = None) -> pd.DataFrame:
    """`materialize` (link | copy), when given, replaces cfg.materialize."""
    cfg = cfg or CleanConfig()
    if materialize is not None:
        cfg = replace(cfg, materialize=materialize)
    materialize = cfg.materialize
    cfg.validate()
    check_workers(workers)
    definition = cfg.near_duplicates()
    if cfg.embedder_weights or (cfg.dedup and cfg.near_dup):
        # the near-duplicate search embeds every image: its weights must be here before the scan, not after it
        definition.check_weights()
    out = Path(out)
    check_writable(out)
    df = mf.load(src, opts, scan=False)
    check_output_location(out, *mf.roots(df))
    df = mf.scan_images(df, workers=workers).reset_index(drop=True)
    df["keep"] = df["error"] == ""
    df["reason"] = np.where(df["keep"], "", "unreadable")
    df["dup_group"] = ""
    df["duplicate_of"] = ""
    df["label_conflict"] = False
    df["ood_score"] = np.nan

    cache: dict[str, np.ndarray] = {}

    def embeddings() -> np.ndarray:
        if "emb" not in cache:
            cache["emb"] = definition.embeddings(df)
        return cache["emb"]

    def style() -> np.ndarray:
        if "style" not in cache:
            from imgcls.embed import style_manifest
            cache["style"] = style_manifest(df, model=cfg.embedder, weights=cfg.embedder_weights,
                                            weights_flag="--embedder-weights", img_size=cfg.embed_size,
                                            device=cfg.device, cache_dir=cfg.cache_dir)
        return cache["style"]

    def features() -> np.ndarray:
        if "feat" not in cache:
            from imgcls.clean.features import feature_matrix
            cache["feat"] = feature_matrix(df, workers=workers)
        return cache["feat"]

    scored = None
    if cfg.dedup and cfg.near_dup:
        scored = definition.scored_pairs(df, embeddings(), min(min(SWEEP), definition.cut), workers=workers)
    if cfg.dedup:
        df = mark_duplicates(df, None, cfg, pairs=scored)
    if cfg.ood:
        from imgcls.clean.registry import OODInputs, get_detector
        det = get_detector(cfg.ood_method)
        scores = det.score(OODInputs(features=features, embeddings=embeddings,
                                     pixels=lambda: pixel_matrix(df), seed=cfg.seed, style=style))
        df["ood_score"] = scores
        flagged = det.flag(scores, cfg.ood_threshold, cfg.ood_contamination) & df["keep"].to_numpy()
        check_ood_share(flagged, (df["error"] == "").to_numpy(), cfg)
        df.loc[flagged, "keep"] = False
        df.loc[flagged, "reason"] = "out_of_domain"
    if cfg.undersample:
        df = undersample(df, embeddings() if cfg.undersample != "random" else None, cfg.undersample,
                         cfg.max_per_class, cfg.seed)

    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)          # what a kill -9 of an earlier run left (materialized copies included)
    mf.write(df, out / mf.MANIFEST_NAME)
    sweep = threshold_sweep(df, scored) if scored is not None else []
    summary = {"config": asdict(cfg), "source": str(src), "n_images": len(df), "kept": int(df["keep"].sum()),
               "removed": {r: int(n) for r, n in df.loc[~df["keep"], "reason"].value_counts().items()},
               "label_conflict_groups": int(df.loc[df["label_conflict"].astype(bool), "dup_group"].nunique()),
               "label_conflicts": conflict_table(df),
               "families": _families(df),
               "threshold_sweep": sweep}
    write_json(out / "clean_summary.json", summary)
    from imgcls.clean.report import write_clean_report
    write_clean_report(out / "report.html", df, summary)
    if materialize:
        materialize_kept(df, out / "images", materialize)
    info(f"clean: kept {summary['kept']} of {len(df)}; removed {summary['removed']}; "
         f"outputs: {out}/manifest.csv, report.html")
    return df


def _families(df: pd.DataFrame) -> dict:
    """Duplicate groups of 3 or more images (e.g. near-identical generated drawings), counted apart from pairs."""
    sizes = df.loc[df["dup_group"] != "", "dup_group"].value_counts()
    fam = sizes[sizes >= 3]
    return {"groups_of_3_or_more": int(len(fam)), "images_in_them": int(fam.sum()),
            "pair_groups": int((sizes == 2).sum())}


def threshold_sweep(df: pd.DataFrame, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[dict]:
    """Images that duplicate removal (exact copies, and near copies at each threshold) would drop, as in seed 000's
    table; `pairs` are the scored pairs (links.NearDuplicates.scored_pairs) down to the lowest threshold swept. At
    the run's threshold `remaining` is what deduplication keeps (one image per group; before out-of-domain and
    undersampling)."""
    ok = (df["error"] == "").to_numpy()
    pi, pj, ps = pairs
    ei, ej = exact_pairs(df)
    rows = []
    for t in SWEEP:
        keep = (ps >= t - 1e-6) & ok[pi] & ok[pj]
        g = links.components(len(df), np.r_[ei, pi[keep]], np.r_[ej, pj[keep]])
        n_groups_members = pd.Series(g[ok]).value_counts()
        rows.append({"threshold": t, "removed": int((n_groups_members - 1).sum()),
                     "remaining": int(ok.sum() - (n_groups_members - 1).sum())})
    return rows


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
