"""The out-of-domain detectors. Which side is out of domain is decided from the data (density), never by assuming
the smaller cluster.

- `photo-style` (default): logistic regression on lite0 texture statistics (mean / std of a mid-level feature
  map), self-trained from the photo-likeness of hand-made features (see PhotoStyle).
- `photo-embedding`: the same self-training on the pooled lite0 embeddings.
- `photo-features`: robust Mahalanobis distance (sklearn MinCovDet) of hand-made photo-vs-drawing features
  from the bulk of the data, signed so only the side away from the bulk's texture statistics counts.
- `embedding-knn`: mean cosine distance to the k nearest neighbours in backbone-embedding space (lite0 offline).
- `combined`: rank-average of the two.
- `pixels-agglomerative` (seed 001): raw 32x32 pixels, agglomerative clustering K=2; the sparser cluster is out of domain.
- `pca-dbscan` (seed 001): PCA(50) of raw pixels + DBSCAN; noise points are out of domain.
"""
from __future__ import annotations

import numpy as np

from imgcls.clean.names import OOD_THRESHOLDS
from imgcls.clean.ood_base import OODDetector, OODInputs, minority_side


def import_libraries() -> None:
    """Import the scikit-learn modules the default detectors fit with (~1 s on a 2-core machine, most of it
    scikit-learn itself) now, e.g. while clean's worker processes decode; each detector imports its own anyway."""
    import sklearn.covariance  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.preprocessing  # noqa: F401


def _knn_distance(x: np.ndarray, k: int = 10) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors
    k = max(1, min(k, len(x) - 1))
    nn = NearestNeighbors(n_neighbors=k + 1).fit(x)
    d, _ = nn.kneighbors(x)
    return d[:, 1:].mean(axis=1)


def _on_valid(ok: np.ndarray, min_rows: int, fn, name: str) -> np.ndarray:
    """fn(ok) scores the valid rows; the rest (and everything, below min_rows) stays NaN. The fit shows a bar
    (detector `name`'s, with its elapsed time): it has no count to show, and photo-style's (a MinCovDet over every
    image) left 10-20 s of a clean of 7,703 images, warm cache or cold, with nothing on screen. Every detector has
    read its inputs (features, embeddings, pixels: passes with bars of their own) before it calls this."""
    from imgcls.console import progress_bar, say_reused
    out = np.full(len(ok), np.nan)
    say_reused()       # clean's line of what the caches served: next to those passes, not after this fit
    if ok.sum() >= min_rows:
        with progress_bar(f"out-of-domain fit ({name}, {int(ok.sum())} images)", None):
            out[ok] = fn(ok)
    return out


def _robust_z(x: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 * MAD) per column, NaN-aware: a z-score the outliers we look for cannot distort."""
    med = np.nanmedian(x, axis=0)
    return (x - med) / (np.nanmedian(np.abs(x - med), axis=0) * 1.4826 + 1e-6)


def _robust_distance(f: np.ndarray, seed: int) -> np.ndarray:
    """Robust Mahalanobis distance (sklearn MinCovDet, 75% support) of each row of `f`'s robust z-scores. When the
    columns do not span their space (saturation 0 everywhere on a greyscale set, two cues that move together), the
    rows are taken in the span they have: the distances a full-rank fit would give there, where MinCovDet's fit of a
    singular covariance printed a warning on every clean of such a set and gave other distances."""
    from sklearn.covariance import MinCovDet
    z = _robust_z(f)
    zc = z - z.mean(axis=0)         # the span is affine (a robust z-score of a combination is not the combination)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    k = int((s ** 2 > max(1e-8, 1e-12 * float(s[0]) ** 2)).sum()) if len(s) else 0    # sklearn's test: 1e-8
    if k == 0:
        return np.zeros(len(z))
    if k < z.shape[1]:
        z = zc @ vt[:k].T           # MinCovDet's distances do not change under a shift and a rotation
    import warnings
    with warnings.catch_warnings():     # sklearn's C-step notes float round-off on near-tied data; the fit stands
        warnings.filterwarnings("ignore", "Determinant has increased", RuntimeWarning)
        return np.sqrt(MinCovDet(random_state=seed, support_fraction=0.75).fit(z).mahalanobis(z))


def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata
    r = np.full(len(x), np.nan)
    ok = ~np.isnan(x)
    r[ok] = rankdata(x[ok]) / max(ok.sum(), 1)
    return r


class PhotoFeatures(OODDetector):
    name = "photo-features"
    description = "robust Mahalanobis distance of photo-vs-drawing features from the bulk (MinCovDet)"
    threshold = OOD_THRESHOLDS[name]
    uses_features = True

    def score(self, inputs: OODInputs) -> np.ndarray:
        f = inputs.features().astype(np.float64)
        return _on_valid(~np.isnan(f).any(axis=1), 5, lambda ok: _robust_distance(f[ok], inputs.seed), self.name)


class EmbeddingKNN(OODDetector):
    name = "embedding-knn"
    description = "mean cosine distance to the 10 nearest neighbours in lite0 embedding space"
    threshold = OOD_THRESHOLDS[name]
    uses_backbone = True

    def score(self, inputs: OODInputs) -> np.ndarray:
        e = inputs.embeddings()
        return _on_valid(np.linalg.norm(e, axis=1) > 0, 3, lambda ok: _knn_distance(e[ok]), self.name)


class Combined(OODDetector):
    name = "combined"
    description = "rank average of photo-features and embedding-knn"
    threshold = OOD_THRESHOLDS[name]
    uses_backbone = True
    uses_features = True

    def score(self, inputs: OODInputs) -> np.ndarray:
        return (_rank(PhotoFeatures().score(inputs)) + _rank(EmbeddingKNN().score(inputs))) / 2


class PixelsAgglomerative(OODDetector):
    name = "pixels-agglomerative"
    description = "seed 001: raw pixels, agglomerative clustering K=2 (sparser cluster = out of domain)"
    threshold = OOD_THRESHOLDS[name]
    max_rows = 20000  # ward linkage is O(n^2) memory

    def score(self, inputs: OODInputs) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering
        px = inputs.pixels()

        def sparser_cluster(ok):
            x = px[ok]
            if len(x) > self.max_rows:
                from imgcls.errors import UserError
                raise UserError(f"pixels-agglomerative needs O(n^2) memory; {len(x)} images > {self.max_rows}: "
                                f"use --ood-method photo-features")
            labels = AgglomerativeClustering(n_clusters=2).fit_predict(x)
            dens = _knn_distance(x)
            side = minority_side({c: float(dens[labels == c].mean()) for c in np.unique(labels)})
            return (labels == side).astype(float)
        return _on_valid(~np.isnan(px).any(axis=1), 0, sparser_cluster, self.name)


class PcaDbscan(OODDetector):
    name = "pca-dbscan"
    description = "seed 001: PCA(50) of raw pixels + DBSCAN; noise points are out of domain"
    threshold = OOD_THRESHOLDS[name]

    def score(self, inputs: OODInputs) -> np.ndarray:
        from sklearn.cluster import DBSCAN
        from sklearn.decomposition import PCA
        px = inputs.pixels()

        def noise_points(ok):
            x = PCA(n_components=min(50, ok.sum() - 1, px.shape[1]), random_state=inputs.seed).fit_transform(px[ok])
            dist = _knn_distance(x, k=5)
            return (DBSCAN(eps=float(np.median(dist) * 2), min_samples=5).fit_predict(x) == -1).astype(float)
        return _on_valid(~np.isnan(px).any(axis=1), 0, noise_points, self.name)


DRAWN_FLAT_MIN = 0.5      # an image with at least this share of flat pixels is drawn (a set: its median image)


def photo_likeness(features: np.ndarray) -> np.ndarray:
    """'Photograph-ness' from hand-made features: the sum of the ranks of five cues (fine texture, distinct colours;
    few flat, smooth or pure-white pixels). Ranks, not z-scores: no cue's scale can dominate.

    Oriented by the data: if the bulk of the set is itself photographic (median flat fraction < 0.5), the sign flips
    and drawings become the out-of-domain side."""
    from imgcls.clean.features import FEATURE_NAMES

    def col(name):
        return features[:, FEATURE_NAMES.index(name)]
    s = (_rank(col("texture_fraction")) + _rank(col("unique_colours_native")) - _rank(col("smooth_fraction"))
         - _rank(col("flat_fraction")) - _rank(col("near_white_fraction")))
    return s if drawn_set(features) else -s


def drawn_set(features: np.ndarray) -> bool:
    """Whether the bulk of the set is drawn (its median flat fraction reaches DRAWN_FLAT_MIN), so photographs are
    its out-of-domain side; else drawings are."""
    from imgcls.clean.features import FEATURE_NAMES
    return bool(np.nanmedian(features[:, FEATURE_NAMES.index("flat_fraction")]) >= DRAWN_FLAT_MIN)


# How far `sure` rows extend self_train's seeds: to twice the top share's. Measured on Open Clip Art samples with
# 3-7.5% photos (docs/BENCHMARKS.md): the photos found rose from 70-88% to 93-97%; unbounded, the photo-realistic
# drawings that pass the photo cues beside the photos joined the seeds (data/sample: 4 drawings flagged, 1 at 2x).
SEED_EXTENSION = 2


def self_train(seed_score: np.ndarray, x: np.ndarray, seed: int, top: float, bottom: float, c: float,
               rounds: int = 2, sure: np.ndarray | None = None) -> np.ndarray:
    """Logistic regression from confident seeds: the top `top` share of seed_score is the out-of-domain side (with
    `sure`, a row mask, extended down the ranking while its rows are sure, to at most SEED_EXTENSION times as many:
    a side larger than `top` trains from more of its members), the bottom `bottom` share the in-domain side; each
    later round re-seeds from the previous round's confident predictions (p >= 0.9 / p <= 0.1). Returns each row's
    probability of the out-of-domain side."""
    from sklearn.linear_model import LogisticRegression
    order = np.argsort(seed_score)
    n = len(seed_score)
    k = max(2, int(round(top * n)))
    if sure is not None:
        ranked = sure[order[::-1]]
        run = len(ranked) if ranked.all() else int(np.argmin(ranked))        # the sure rows from the top
        k = max(k, min(run, SEED_EXTENSION * k))
    pos = order[-k:]
    neg = order[:int(bottom * n)]
    p = None
    for _ in range(rounds):
        idx = np.concatenate([pos, neg])
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
        clf.fit(x[idx], y)
        p = clf.predict_proba(x)[:, 1]
        new_pos, new_neg = np.flatnonzero(p >= 0.9), np.flatnonzero(p <= 0.1)
        if len(new_pos) < 2 or len(new_neg) < 2:
            break
        pos, neg = new_pos, new_neg
    return p


POPULATION_MIN_SEEDS = 5
# Below that (a set under ~1,250 images), where robust distances of so few rows say little, the seeds are judged by
# absolute cues instead: a photograph has fine texture over most of it and few flat pixels, a drawing mostly flat
# pixels (DRAWN_FLAT_MIN, photo_likeness's orientation). Measured (docs/BENCHMARKS.md, sets below the judging
# size): openclipart_dirty's 72 photos texture median 0.78 / flat 0.055, data/sample's 6 photos 0.74-0.95 /
# 0.01-0.15; the 3 most photo-like drawings of photo-free 130-image samples texture median 0.48 / flat 0.37.
# A drawing is mostly flat *and* barely textured: flat alone (>= DRAWN_FLAT_MIN) is also a photographed object on a
# flat backdrop. Fashion-MNIST (28 px grey product photos on black, median flat 0.30) was judged a photographic set
# whose narrow garments were drawings: random samples of 50-1,000 images held a population of drawings 34-40 times
# in 40, so clean flagged Trouser, the narrowest class, whole. Their 3 most drawing-like images have texture
# 0.29-0.59 (median 0.47), Open Clip Art drawings median 0.22 (docs/BENCHMARKS.md, sets below the judging size).
SMALL_SET_SEEDS = 3
PHOTO_TEXTURE_MIN, PHOTO_FLAT_MAX = 0.6, 0.2
DRAWN_TEXTURE_MAX = 0.3


def small_set_cues(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(photographic, drawn) per row by absolute cues: texture >= PHOTO_TEXTURE_MIN and flat <= PHOTO_FLAT_MAX;
    flat >= DRAWN_FLAT_MIN and texture <= DRAWN_TEXTURE_MAX."""
    from imgcls.clean.features import FEATURE_NAMES
    texture = features[:, FEATURE_NAMES.index("texture_fraction")]
    flat = features[:, FEATURE_NAMES.index("flat_fraction")]
    return ((texture >= PHOTO_TEXTURE_MIN) & (flat <= PHOTO_FLAT_MAX),
            (flat >= DRAWN_FLAT_MIN) & (texture <= DRAWN_TEXTURE_MAX))


def photo_population(features: np.ndarray, top: float, seed: int) -> bool:
    """Whether the set holds an out-of-domain (photograph) population for the self-training to learn: the median
    robust photo-feature distance (photo-features' score) of its seeds (the top `top` share of the photo-likeness)
    reaches photo-features' own threshold. Measured (docs/BENCHMARKS.md): on openclipart_dirty (72 photos in 7,975)
    all 32 seeds are photos at distance 33-82; on the photo-free openclipart_l1 the seeds are drawings at 7-30
    (median 18). Without a population the seeds are merely the most textured drawings, and the classifier trained
    from them would flag several percent of a clean set (1-10% of photo-free samples of 50-1,000 drawings). With
    fewer than POPULATION_MIN_SEEDS seeds the robust distances of so few rows say little (3 photos among 47
    drawings sit at 14-25, among drawings up to 22; data/sample's 6 photos at 13-25): the SMALL_SET_SEEDS most
    photo-like images (on a photographic set, the most drawing-like) are then judged by absolute cues
    (small_set_cues), a population when most of them are photographs (drawings)."""
    order = np.argsort(photo_likeness(features))
    seeds = order[-max(2, int(round(top * len(features)))):]
    if len(seeds) < POPULATION_MIN_SEEDS:
        photo, drawn = small_set_cues(features)
        other = photo if drawn_set(features) else drawn          # the side away from the bulk
        return bool(2 * int(other[order[-SMALL_SET_SEEDS:]].sum()) > SMALL_SET_SEEDS)
    dist = _robust_distance(features.astype(np.float64), seed)
    return bool(np.median(dist[seeds]) >= PhotoFeatures.threshold)


def _self_trained_or_none(name: str, f: np.ndarray, x: np.ndarray, seed: int, top: float, bottom: float, c: float,
                          rounds: int) -> np.ndarray:
    """self_train's probabilities, or zeros (nothing flagged, said once) when photo_population finds no
    out-of-domain side."""
    if not photo_population(f, top, seed):
        from imgcls.console import info_after_bar
        side = "photo-like images are not photographic" if drawn_set(f) else "drawing-like images are not drawn"
        info_after_bar(f"{name}: no out-of-domain population (the most {side} outliers): nothing flagged")
        return np.zeros(len(f))
    # the seeds go on down the photo-likeness while the images are photographs (drawings) by absolute cues: 0.4%
    # of a 400-image set with 30 photos is 2 seeds, from which 70% of its photos were found (SEED_EXTENSION)
    photo, drawn = small_set_cues(f)
    return self_train(photo_likeness(f), x, seed, top, bottom, c, rounds=rounds,
                      sure=photo if drawn_set(f) else drawn)


class PhotoStyle(OODDetector):
    """Default. Self-training on texture statistics: the hand-made photo-likeness picks confident seeds (top 0.4% /
    bottom 70%), a logistic regression on the backbone's style statistics (per-channel mean and std of a stride-16
    feature map, signed-log scaled and standardised) learns the difference; three rounds. Score: probability of the
    out-of-domain side. The seeds assume that side is at least ~0.4% of the set; when they are not photographic
    outliers (photo_population) there is no such side and nothing is flagged."""
    name = "photo-style"
    description = "logistic regression on lite0 texture statistics, self-trained from photo-vs-drawing features"
    threshold = OOD_THRESHOLDS[name]
    uses_backbone = True
    uses_features = True
    seed_top = 0.004
    seed_bottom = 0.70

    def score(self, inputs: OODInputs) -> np.ndarray:
        f = inputs.features()
        st = inputs.style()
        ok = ~np.isnan(f).any(axis=1) & (np.abs(st).sum(axis=1) > 0)

        def fit(ok):
            from sklearn.preprocessing import StandardScaler
            x = StandardScaler().fit_transform(np.sign(st[ok]) * np.log1p(np.abs(st[ok])))
            return _self_trained_or_none(self.name, f[ok], x, inputs.seed, self.seed_top, self.seed_bottom, 0.1, 3)
        return _on_valid(ok, 20, fit, self.name)


class PhotoEmbedding(OODDetector):
    """Self-training as photo-style, on the pooled embeddings (semantic rather than texture features); top 1% /
    bottom 70% seeds, two rounds."""
    name = "photo-embedding"
    description = "logistic regression on pooled lite0 embeddings, self-trained from photo-vs-drawing features"
    threshold = OOD_THRESHOLDS[name]
    uses_backbone = True
    uses_features = True
    seed_top = 0.01
    seed_bottom = 0.70

    def score(self, inputs: OODInputs) -> np.ndarray:
        f = inputs.features()
        e = inputs.embeddings()
        ok = ~np.isnan(f).any(axis=1) & (np.linalg.norm(e, axis=1) > 0)
        return _on_valid(ok, 20, lambda ok: _self_trained_or_none(self.name, f[ok], e[ok], inputs.seed, self.seed_top,
                                                                  self.seed_bottom, 1.0, 2), self.name)


# every detector, in --help order (imgcls.clean.registry indexes them by name)
DETECTORS = (PhotoStyle, PhotoEmbedding, PhotoFeatures, EmbeddingKNN, Combined, PixelsAgglomerative, PcaDbscan)
