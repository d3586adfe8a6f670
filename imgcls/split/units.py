"""The units a split places: rows linked by group, content, source image, clean's duplicate group or a near-duplicate
pair (imgcls.links) form one unit, named by its smallest path."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls import links
from imgcls.split.config import LINK_COLUMNS, SplitConfig


def link_pairs(df: pd.DataFrame, group_col: str = "group",
               near_pairs: Sequence[tuple[int, int, float]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) position pairs of the rows linked_units joins: group / sha256 / source_path / dup_group, an oversampled
    copy and its source(s) (augmented_from names their paths), the near-duplicate pairs."""
    i, j, _ = typed_link_pairs(df, group_col, near_pairs)
    return i, j


# what joins the two rows of a link (typed_link_pairs): a shared value of the group column or LINK_COLUMNS, a
# near-duplicate pair, an oversampled copy's augmented_from naming its source
EXACT_LINK, NEAR_LINK, COPY_LINK = 0, 1, 2


def typed_link_pairs(df: pd.DataFrame, group_col: str = "group", near_pairs: Sequence[tuple[int, int, float]] = ()
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """link_pairs' (i, j) and each link's kind (EXACT_LINK, NEAR_LINK, COPY_LINK): the leak check reads the first
    two; with folds a copy may sit apart from a source it names (COPY_LINK), split.assign.follow_sources."""
    ii, jj = [np.array([p[0] for p in near_pairs], np.int64)], [np.array([p[1] for p in near_pairs], np.int64)]
    kinds = [np.full(len(ii[0]), NEAR_LINK)]
    for col in (group_col,) + LINK_COLUMNS:
        if col in df.columns:
            i, j = links.exact_pairs(df[col].to_numpy())
            ii.append(i)
            jj.append(j)
            kinds.append(np.full(len(i), EXACT_LINK))
    if "augmented_from" in df.columns:     # an oversampled copy stays with the image(s) it was made from
        from imgcls.manifest import COPY_SEP
        i, j = links.reference_pairs(df["path"].to_numpy(), df["augmented_from"].to_numpy(), COPY_SEP)
        ii.append(i)
        jj.append(j)
        kinds.append(np.full(len(i), COPY_LINK))
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(kinds)


def _named(df: pd.DataFrame, comp: np.ndarray) -> np.ndarray:
    """Each component's label: its smallest `root/path`, so it does not depend on the row order."""
    ident = (df["root"].astype(str) + "/" + df["path"].astype(str)).to_numpy()
    first = pd.Series(ident).groupby(comp).min()
    return first.loc[comp].to_numpy()


def linked_units(df: pd.DataFrame, group_col: str = "group",
                 near_pairs: Sequence[tuple[int, int, float]] = ()) -> np.ndarray:
    """A unit label per row: rows linked by group / sha256 / source_path / dup_group / near-duplicate pairs, and
    an oversampled copy with its source(s) (augmented_from names their paths), share it. The label is the smallest
    `root/path` of the unit, so it does not depend on the row order."""
    return joined_units(df, *link_pairs(df, group_col, near_pairs))


def joined_units(df: pd.DataFrame, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A unit label per row from the links (i, j) (positions), named as linked_units names them."""
    if len(df) == 0:
        return np.array([], dtype=object)
    return _named(df, links.components(len(df), i, j))


def units_apart(df: pd.DataFrame, drawn: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A label per row from the links (i, j) that do not join a drawn row (an original: split.assign.drawn_rows)
    to a copy: the originals' units, which the split draws, and the copies' own clusters, which follow their
    sources (split.assign.follow_sources). A mixup copy names two sources: joined through it, a small class's
    originals became one unit, kept whole in train and never validated (Fashion-MNIST: 4 of 10 classes)."""
    same = drawn[i] == drawn[j]
    return joined_units(df, i[same], j[same])


def near_duplicate_pairs_for(df: pd.DataFrame, cfg: SplitConfig, workers: int = 1,
                             units_of: np.ndarray | None = None) -> list[tuple[int, int, float]]:
    """Near-duplicate pairs (positional indices into df) by the definition cfg chooses (imgcls.links). `units_of`
    (a new split): a unit label per row by the other links (linked_units without pairs); the caller needs only the
    units the pairs add to them, so verification skips a pair whose images are already in one unit
    (NearDuplicates.scored_pairs' `levels` and `joined`) and does not return it: the same units, fewer pairs, each
    verified (what the split links, and the label-conflict line's example, are real near duplicates). A leak check
    of an existing split needs every pair checked (no `units_of`)."""
    if len(df) < 2:
        return []
    definition = cfg.near_duplicates()
    df = df.reset_index(drop=True)
    emb = None
    if definition.method == "verified":        # the candidates of the rows preprocess only resized: their inputs'
        inputs = embedded_images(df, workers, cfg.max_pixels)
        emb = definition.embeddings(inputs, workers) if inputs is not df else None
    i, j, s = definition.scored_pairs(df, emb=emb, workers=workers,
                                      levels=None if units_of is None else [definition.cut], joined=units_of)
    return [(int(a), int(b), float(c)) for a, b, c in zip(i, j, s)]


def resized_only(df: pd.DataFrame) -> np.ndarray:
    """Rows preprocess only resized: a readable row whose `source_path` names another file, no face detection ran
    for it (face_found blank: no --face-crop), its background was not removed (bg_removed false) and it is not an
    oversampled copy (augmented_from). Its picture is its input's, scaled: the near-duplicate search can look at the
    input (embedded_images)."""
    from imgcls.manifest import augmented, coerce, error_texts, text_values
    if "source_path" not in df.columns or not len(df):
        return np.zeros(len(df), bool)
    flags = coerce(df[[c for c in ("face_found", "bg_removed") if c in df.columns]].copy())
    out = (text_values(df["source_path"]) != "").to_numpy() & ~augmented(df)
    out &= np.asarray(error_texts(df)) == ""
    if "face_found" in flags.columns:
        out &= flags["face_found"].isna().to_numpy()
    if "bg_removed" in flags.columns:
        out &= ~flags["bg_removed"].fillna(False).to_numpy(bool)
    return out


def embedded_images(df: pd.DataFrame, workers: int = 1, max_pixels: int | None = None) -> pd.DataFrame:
    """The images whose embeddings pick the verified search's candidate pairs, one per row of df (same positions): a
    row preprocess only resized (resized_only) is embedded as its input (source_path, scanned for its sha256), so
    split on preprocess's output takes the embeddings clean kept for those inputs (the cache is keyed by content:
    each resized copy, a new file, was embedded again, 40 CPU-s and 1.4 GB of a split of 2,000 images); every
    other row, or an input no longer readable, as its own image. df itself when no row is taken. The candidates
    are verified on the rows' own pixels (scored_pairs' thumbnails): on openclipart_l1 (7,505 images, --size 128)
    the verified pairs were 98% the same and joined the same groups (README, split); the inputs' pairs themselves
    (clean's, verified at full size) were not: 17% of them differed, 48 rows in other units."""
    from imgcls import manifest as mf
    from imgcls.console import info, plural
    rows = np.flatnonzero(resized_only(df))
    if not len(rows):
        return df
    src = df["source_path"].astype(str).to_numpy()[rows]
    own = np.array([str(p) for p in mf.image_paths(df.iloc[rows])], object)
    there = np.array([s != o and os.path.isabs(s) and os.path.isfile(s) for s, o in zip(src, own)], bool)
    rows, src = rows[there], src[there]
    if not len(rows):
        return df
    inputs = df.iloc[rows].copy()
    inputs["root"], inputs["path"] = "", src
    for c in mf.SCAN_COLUMNS:
        inputs[c] = "" if c in ("sha256", "error") else None
    inputs = mf.scan_images(inputs, workers, max_pixels, require=False)
    ok = np.asarray(mf.error_texts(inputs)) == ""
    if not ok.any():
        return df
    out = df.copy()
    for c in ["root", "path", *mf.SCAN_COLUMNS]:
        out[c] = out[c].astype(object)
        out.iloc[rows[ok], out.columns.get_loc(c)] = inputs[c].to_numpy()[ok]
    info(f"near-duplicate candidates of {plural(int(ok.sum()), 'image')} that preprocess only resized picked by "
         f"their inputs' embeddings (source_path; cached by clean), verified on the resized images")
    return out


def content_label_conflicts(df: pd.DataFrame, near_pairs: Sequence[tuple[int, int, float]] = ()
                            ) -> tuple[int, str, tuple[str, str, str, str, str] | None]:
    """Copies filed under different labels, among the rows clean has not already settled (clean's `label_conflict`
    marks the groups it decided; the rows it removed are not in df): byte-identical copies (one sha256,
    links.exact_pairs) and the near-duplicate pairs split found (positions into df), joined into groups
    (links.components) as clean groups them. Returns (groups spanning labels, what they are: 'byte-identical',
    'near-duplicate' or 'byte-identical or near-duplicate', an example (path, label, path, label, how the two are
    linked) of one such link: a byte-identical one first). The split keeps each group on one side (one unit), but
    training would see the same picture under two labels."""
    from imgcls.manifest import text_values
    if "label" not in df.columns or len(df) < 2:
        return 0, "", None
    labels = text_values(df["label"]).to_numpy()
    use = labels != ""
    if "label_conflict" in df.columns:
        from imgcls.manifest import coerce
        use &= ~coerce(df[["label_conflict"]].copy())["label_conflict"].to_numpy(bool)
    ei, ej = (links.exact_pairs(df["sha256"].to_numpy(), valid=use) if "sha256" in df.columns
              else (np.zeros(0, np.int64),) * 2)
    ni, nj = (np.array([p[k] for p in near_pairs], np.int64) for k in (0, 1))
    scores = np.array([p[2] for p in near_pairs], float)
    inside = use[ni] & use[nj]
    ni, nj, scores = ni[inside], nj[inside], scores[inside]
    comp = links.components(len(df), np.r_[ei, ni], np.r_[ej, nj])
    spans = pd.Series(labels[use]).groupby(comp[use]).nunique()
    spans = spans.index[spans.to_numpy() > 1].to_numpy()
    if not len(spans):
        return 0, "", None
    exact = np.isin(comp[ei], spans).any()
    near = np.isin(comp[ni], spans).any()
    what = "byte-identical or near-duplicate" if exact and near else "byte-identical" if exact else "near-duplicate"
    paths = df["path"].astype(str).to_numpy()
    differ = np.flatnonzero(labels[ei] != labels[ej])
    if len(differ):
        a, b, how = int(ei[differ[0]]), int(ej[differ[0]]), "byte-identical"
    else:       # a group spanning labels has a link whose two ends differ: a near-duplicate pair here
        k = int(np.flatnonzero(labels[ni] != labels[nj])[0])
        a, b, how = int(ni[k]), int(nj[k]), f"near-duplicates, score {scores[k]:.2f}"
    return int(len(spans)), what, (paths[a], labels[a], paths[b], labels[b], how)
