"""The mask competition's profile labels: one formula for the class id, used by the profiles layout, split's
relabelling, training's heads and their decoding.

A profile folder `<id>_<gender>_<race>_<age>` holds one person's images `mask1..5`, `incorrect_mask`, `normal`;
`mask` (0 wear, 1 incorrect, 2 not worn), `gender` (0 male, 1 female) and the age band (edges, default 30, 60:
<30, 30-59, >=60) give the class id (mask * 2 + gender) * n_bands + age_band: 18 classes with three bands.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from imgcls.errors import UserError
# declared in imgcls.profile_names (light: the options that name them), computed with here
from imgcls.profile_names import (DEFAULT_AGE_BANDS, GENDER_CLASSES, MASK_CLASSES, PROFILE_DIR,  # noqa: F401
                                  PROFILE_HEADS)


def mask_from_stem(stem: str) -> int | None:
    s = stem.lower()
    if s.startswith("mask"):
        return 0
    if s.startswith("incorrect"):
        return 1
    if s.startswith("normal"):
        return 2
    return None


def age_band(age: int | float, edges: Sequence[int] = DEFAULT_AGE_BANDS) -> int:
    """Index of the band: edges (30, 60) -> 0 for <30, 1 for 30..59, 2 for >=60."""
    return int(sum(age >= e for e in edges))


@dataclass(frozen=True)
class ProfileScheme:
    """The one formula of the mask competition's classes: label = (mask * 2 + gender) * n_bands + age_band, i.e.
    mask*6 + gender*3 + age_band for three bands (18 classes). Label order = the product of the heads' classes in
    HEADS order, so a multi-head model's decoded index is the label."""
    n_bands: int = len(DEFAULT_AGE_BANDS) + 1
    HEADS = PROFILE_HEADS

    @classmethod
    def from_edges(cls, edges: Sequence[int]) -> "ProfileScheme":
        return cls(len(tuple(edges)) + 1)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Classes per head (mask, gender, age_band)."""
        return len(MASK_CLASSES), len(GENDER_CLASSES), self.n_bands

    @property
    def n_classes(self) -> int:
        return int(np.prod(self.sizes))

    def label(self, mask, gender, band):
        """The class id(s): ints, or numpy arrays of them."""
        return (np.asarray(mask) * len(GENDER_CLASSES) + np.asarray(gender)) * self.n_bands + np.asarray(band)

    def parts(self, label) -> tuple:
        """(mask, gender, age_band) of class id(s): the inverse of `label`."""
        label = np.asarray(label)
        return label // (len(GENDER_CLASSES) * self.n_bands), label // self.n_bands % len(GENDER_CLASSES), \
            label % self.n_bands

    def table(self) -> list[tuple[int, int, int]]:
        """(mask, gender, age_band) of every class id, in id order."""
        m, g, b = self.parts(np.arange(self.n_classes))
        return [(int(x), int(y), int(z)) for x, y, z in zip(m, g, b)]


def band_names(edges: Sequence[int] = DEFAULT_AGE_BANDS) -> tuple[str, ...]:
    """The age bands' names: edges (30, 60) -> '<30', '30-59', '>=60'."""
    e = [int(x) for x in edges]
    return (f"<{e[0]}", *(f"{a}-{b - 1}" for a, b in zip(e, e[1:])), f">={e[-1]}")


def value_names(edges: Sequence[int] = DEFAULT_AGE_BANDS) -> dict[str, tuple[str, ...]]:
    """What each value of the attribute columns means: mask 0 -> 'wear', gender 1 -> 'female', age_band 0 -> '<30'."""
    return {"mask": MASK_CLASSES, "gender": GENDER_CLASSES, "age_band": band_names(edges)}


def class_meanings(edges: Sequence[int] = DEFAULT_AGE_BANDS) -> dict[str, str]:
    """Each class id of the profile labels, as the label column spells it ('4'), -> 'wear, female, 30-59'."""
    names = value_names(edges)
    return {str(i): ", ".join(names[h][v] for h, v in zip(ProfileScheme.HEADS, parts))
            for i, parts in enumerate(ProfileScheme.from_edges(edges).table())}


def model_class_meanings(classes: Sequence[str], target: str = "label",
                         age_bands: Sequence[int] | None = None) -> dict[str, str]:
    """What a model's classes mean, from its metadata (ModelMeta.classes / target / age_bands): the profile
    formula's ids ('4' -> 'wear, female, 30-59') where the classes are every id of the recorded bands (a multi-head
    run's, a single-head run's on the profile labels), an attribute's values for a `train --target mask|gender|
    age_band` run ('0' -> 'wear'); {} where nothing says (other data, or bands not recorded: never guessed)."""
    classes = [str(c) for c in classes]
    if target == "label":
        if age_bands is None:
            return {}
        names = class_meanings(age_bands)
        return names if classes == list(names) else {}
    if target not in PROFILE_HEADS or (target == "age_band" and age_bands is None):
        return {}
    values = value_names(age_bands or DEFAULT_AGE_BANDS)[target]
    ids = [str(i) for i in range(len(values))]
    return {c: values[int(c)] for c in classes} if set(classes) <= set(ids) else {}


def prediction_meanings(classes: Sequence[str], metas: Sequence) -> dict[str, str]:
    """What a prediction's classes mean, from its models' metadata (ModelMeta): the first model of these classes
    that tells (model_class_meanings), else the profile ids under the age bands a member recorded (a --combine
    profile ensemble of mask / gender / age_band runs predicts the 18 ids no member has); {} where none tells."""
    for m in metas:
        if [str(c) for c in m.classes] == [str(c) for c in classes] and (found := m.class_meanings()):
            return found
    edges = next((m.age_bands for m in metas if m.age_bands is not None), None)
    return model_class_meanings(classes, "label", edges)


def class_titles(classes: Sequence[str], meanings: dict[str, str] | None) -> list[str]:
    """How a figure or table names each class: '4 (wear, female, 30-59)' where `meanings` (class_meanings,
    model_class_meanings, eda's summary) says what it is, else the class as it is."""
    meanings = meanings or {}
    return [f"{c} ({meanings[str(c)]})" if meanings.get(str(c)) else str(c) for c in classes]


def bands_of_labels(mask, gender, band, label) -> int | None:
    """The number of age bands the rows' labels were made with (label = (mask * 2 + gender) * n_bands + band), read
    from the rows where mask * 2 + gender > 0; None when the labels are not of the formula or do not tell (a column
    edited by hand, or only wearing men)."""
    try:
        m, g, b, y = (np.asarray(pd.to_numeric(pd.Series(np.asarray(v)), errors="raise"), np.float64)
                      for v in (mask, gender, band, label))
    except (ValueError, TypeError):
        return None
    mg = ProfileScheme(n_bands=1).label(m, g, 0)      # mask * 2 + gender: the label's factor of n_bands
    tell = mg > 0
    if not tell.any():
        return None
    n = (y[tell] - b[tell]) / mg[tell]
    if not (n == n[0]).all() or n[0] != round(n[0]) or n[0] <= max(b.max(), 0):
        return None
    n_bands = int(n[0])
    return n_bands if np.array_equal(y, ProfileScheme(n_bands).label(m, g, b)) else None


def apply_profile_labels(df: pd.DataFrame, edges: Sequence[int] = DEFAULT_AGE_BANDS,
                         assign_edges: Sequence[int] | None = None) -> pd.DataFrame:
    """(Re)derive age_band and label from the mask / gender / age columns. `edges` fix the bands (and the number of
    classes); `assign_edges` (as many) move the ages at which a row enters each band (split's --relabel-age)."""
    df = df.copy()
    edges = tuple(int(e) for e in edges)
    put = edges if assign_edges is None else tuple(int(e) for e in assign_edges)
    if len(put) != len(edges):
        raise UserError(f"--relabel-age needs as many edges as --age-bands ({len(edges)}), got "
                        f"{','.join(map(str, put))}")
    df["age_band"] = [age_band(a, put) for a in pd.to_numeric(df["age"]).astype(int)]
    scheme = ProfileScheme.from_edges(edges)
    df["label"] = [str(v) for v in scheme.label(pd.to_numeric(df["mask"]).astype(int).to_numpy(),
                                                pd.to_numeric(df["gender"]).astype(int).to_numpy(),
                                                df["age_band"].to_numpy(int))]
    return df


def edges_of_rows(age, band, n_bands: int, candidates: Sequence[Sequence[int]] = ()) -> tuple[int, ...] | None:
    """The age band edges the rows' `age_band` values were assigned with: the first of `candidates` (e.g. the
    edges a split recorded), then the default bands, that puts every row in its band; else None (not told: the
    rows' ages bound an edge but do not give it, e.g. ages 22 and 45 under --age-bands 40, and a guess recorded
    as the run's would refuse its ensemble with a run that knows them)."""
    try:
        a, b = (np.asarray(pd.to_numeric(pd.Series(np.asarray(v)), errors="raise"), np.float64) for v in (age, band))
    except (ValueError, TypeError):
        return None
    if not len(a) or np.isnan(a).any() or np.isnan(b).any():
        return None
    for edges in (*candidates, DEFAULT_AGE_BANDS):
        edges = tuple(int(e) for e in edges)
        if len(edges) + 1 == n_bands and all(age_band(x, edges) == y for x, y in zip(a, b)):
            return edges
    return None
