"""Verified pairs replayed instead of verified again (near_dup.PairRecord, imgcls.clean.pair_cache): the same scores
as a fresh verification, by the same path, and nothing computed twice."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from test_clean import _icon


def _images() -> list:
    """Four icons that differ in one small region or their background, each with four transformed copies."""
    out = []
    for base in (_icon("8"), _icon("3"), _icon("8", "blue"), _icon(background="cream")):
        w, h = base.size
        out += [base, ImageOps.mirror(base), base.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
                base.resize((int(w * .7), int(h * .7))), ImageEnhance.Brightness(base).enhance(1.15)]
    return out


def _boom(*a, **k):
    raise AssertionError("computed again")


def test_a_record_replays_verify_pairs_at_its_floor_and_above_and_recomputes_below(monkeypatch):
    from imgcls.clean import near_dup
    thumbs = np.stack([np.asarray(im.convert("RGB").resize((near_dup.THUMB,) * 2, Image.Resampling.BOX))
                       for im in _images()])
    a, b = np.triu_indices(len(thumbs), 1)
    checked = []                        # the pairs local_agreement is given, while counted
    real = near_dup.local_agreement

    def counted(t, x, *r, **k):
        checked.append(len(x))
        return real(t, x, *r, **k)
    with monkeypatch.context() as m:    # a fresh check at 0.90: its scores, and how many pairs it checks locally
        m.setattr(near_dup, "local_agreement", counted)
        fresh = near_dup.verify_pairs(thumbs, a, b, floor=0.90)
    n_full = sum(checked)
    fresh_levels = near_dup.verify_pairs(thumbs, a, b, floor=0.98, levels=[0.98])
    rec = near_dup.PairRecord.empty(len(a))
    first = near_dup.verify_pairs(thumbs, a, b, floor=0.90, record=rec)
    np.testing.assert_array_equal(first, fresh)            # a record changes nothing it is given empty
    assert rec.fresh.all() and not np.isnan(rec.glob).any() and (~np.isnan(rec.local)).sum() > 10
    with monkeypatch.context() as m:                              # replayed: nothing is computed again
        m.setattr(near_dup, "_verify_chunk", _boom)
        m.setattr(near_dup, "local_agreement", _boom)
        np.testing.assert_array_equal(near_dup.verify_pairs(thumbs, a, b, floor=0.90, record=rec), first)
        assert not rec.fresh.any()
        # at a higher floor, joining groups (split on clean's output): what is compared at 0.98 is a fresh check's
        got = near_dup.verify_pairs(thumbs, a, b, floor=0.98, levels=[0.98], record=rec)
        above = fresh_levels >= 0.98
        assert ((got >= 0.98) == above).all() and above.sum() >= 15
        np.testing.assert_array_equal(got[above], fresh_levels[above])
    # recorded at 0.98, asked at 0.90: a pair the curves cut short at 0.98 (or not checked locally at all) is
    # checked now, the others are replayed; the scores are those of a fresh check at 0.90
    monkeypatch.setattr(near_dup, "local_agreement", counted)
    high = near_dup.PairRecord.empty(len(a))
    near_dup.verify_pairs(thumbs, a, b, floor=0.98, record=high)
    checked[:] = []
    monkeypatch.setattr(near_dup, "_verify_chunk", _boom)
    np.testing.assert_array_equal(near_dup.verify_pairs(thumbs, a, b, floor=0.90, record=high), fresh)
    assert 0 < sum(checked) < n_full


def _folder(root):
    for k, im in enumerate(_images()):
        (root / f"c{k % 2}").mkdir(parents=True, exist_ok=True)
        im.convert("RGB").save(root / f"c{k % 2}" / f"img{k:02d}.png")
    return root


def _scan(root):
    from imgcls import manifest as mf
    return mf.scan_images(mf.load(root, None, scan=False)).reset_index(drop=True)


def test_scored_pairs_replay_a_clean_s_pairs_in_its_rerun_and_in_split_on_its_kept_rows(tmp_path, monkeypatch):
    from imgcls import links
    from imgcls.clean import near_dup, pair_cache
    df = _scan(_folder(tmp_path / "data"))
    emb = np.zeros((len(df), 8), np.float32)          # candidates from the tiny thumbnails alone
    nd = links.NearDuplicates(cache_dir=str(tmp_path / "cache"))
    want = nd.scored_pairs(df, emb, 0.90)
    kept = df.drop(index=[0, 7]).reset_index(drop=True)
    want_kept = links.NearDuplicates(cache_dir=str(tmp_path / "elsewhere")).scored_pairs(
        kept, emb[:len(kept)], levels=[0.98], joined=np.arange(len(kept)))
    assert len(want[0]) >= 15 and len(want_kept[0]) >= 10
    files = list((tmp_path / "cache").glob("verified_pairs_96px_rgb_*.npz"))
    assert [f.name for f in files] == [f"verified_pairs_96px_rgb_{pair_cache.numbers_digest()}.npz"]
    with monkeypatch.context() as m:
        m.setattr(near_dup, "_verify_chunk", _boom)
        m.setattr(near_dup, "local_agreement", _boom)
        for got, ref in ((nd.scored_pairs(df, emb, 0.90), want),
                         (nd.scored_pairs(kept, emb[:len(kept)], levels=[0.98], joined=np.arange(len(kept))),
                          want_kept)):
            for x, y in zip(got, ref):
                np.testing.assert_array_equal(x, y)
    # a file that does not fit is said and ignored: the pairs are verified again, with the same scores
    files[0].write_bytes(b"not an npz")
    calls = []
    real = near_dup._verify_chunk
    monkeypatch.setattr(near_dup, "_verify_chunk", lambda *x: calls.append(1) or real(*x))
    said = []
    monkeypatch.setattr("imgcls.console.warn", lambda msg, *a, **k: said.append(msg))
    for x, y in zip(nd.scored_pairs(df, emb, 0.90), want):
        np.testing.assert_array_equal(x, y)
    assert calls and any("verified-pair cache" in s and "ignored" in s for s in said), said
    # numbers from other code or libraries live in another file and are never replayed
    calls[:] = []
    monkeypatch.setattr(pair_cache, "numbers_digest", lambda: "0123456789ab")
    nd.scored_pairs(df, emb, 0.90)
    assert calls and (tmp_path / "cache" / "verified_pairs_96px_rgb_0123456789ab.npz").is_file()
    # ... and writing it removes the older code's files, which no run reads again (each upgrade left one behind)
    names = sorted(f.name for f in (tmp_path / "cache").glob("*_96px_*.npz"))
    assert names[1:] == ["thumbnail_summaries_96px_0123456789ab.npz", "verified_pairs_96px_rgb_0123456789ab.npz"]
    assert names[0].startswith("candidate_pairs_96px_0123456789ab_"), names      # the candidates too


def test_a_replayed_verification_decodes_only_the_images_of_the_pairs_it_computes(tmp_path, monkeypatch):
    """Each image's candidate-search numbers are kept with the pairs: a rerun that replays every pair decodes no
    image, and one new image is decoded with the images of the pairs it brings, not the whole set."""
    from imgcls import links
    from imgcls.clean import pair_cache
    root = _folder(tmp_path / "data")
    df = _scan(root)
    nd = links.NearDuplicates(cache_dir=str(tmp_path / "cache"))
    want = nd.scored_pairs(df, np.zeros((len(df), 8), np.float32), 0.90)
    decoded = []
    real = pair_cache._thumbnail_of
    monkeypatch.setattr(pair_cache, "_thumbnail_of", lambda a: decoded.append(a[0]) or real(a))
    for x, y in zip(nd.scored_pairs(df, np.zeros((len(df), 8), np.float32), 0.90), want):
        np.testing.assert_array_equal(x, y)
    assert decoded == []
    ImageEnhance.Brightness(_icon("3")).enhance(0.9).convert("RGB").save(root / "c0" / "new.png")
    df = _scan(root)
    emb = np.zeros((len(df), 8), np.float32)
    fresh = links.NearDuplicates(cache_dir=str(tmp_path / "fresh")).scored_pairs(df, emb, 0.90)
    assert len(decoded) == len(df)
    decoded.clear()
    for x, y in zip(nd.scored_pairs(df, emb, 0.90), fresh):
        np.testing.assert_array_equal(x, y)
    assert any(p.endswith("new.png") for p in decoded) and 1 < len(decoded) < len(df), decoded


def test_a_rerun_decodes_no_image_for_the_pairs_it_skips_again_as_joined(tmp_path, monkeypatch):
    """clean's groups (levels): a pair whose images were joined already was not checked locally; the rerun skips it
    again, so it decodes nothing for it (a warm clean of 4,204 fmnist_lt images decoded 2,978 thumbnails for 0
    checks). Asked at other levels, it checks (and decodes) what a fresh verification's groups need: same groups."""
    from imgcls import links
    from imgcls.clean import near_dup, pair_cache
    df = _scan(_folder(tmp_path / "data"))
    emb = np.zeros((len(df), 8), np.float32)
    nd = links.NearDuplicates(cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(near_dup, "LOCAL_BATCH", 2)        # rounds of a few pairs, as of 1,024 on a big set
    want = nd.scored_pairs(df, emb, 0.98, levels=[0.98])
    kept = pair_cache.PairCache(tmp_path / "cache", greyscale=False).table
    assert ((kept["glob"] >= 0.98) & kept["local"].isna()).sum() >= 5      # skipped as joined, kept unchecked
    decoded = []
    real = pair_cache._thumbnail_of
    monkeypatch.setattr(pair_cache, "_thumbnail_of", lambda a: decoded.append(a[0]) or real(a))
    with monkeypatch.context() as m:
        m.setattr(near_dup, "_verify_chunk", _boom)
        m.setattr(near_dup, "local_agreement", _boom)
        for x, y in zip(nd.scored_pairs(df, emb, 0.98, levels=[0.98]), want):
            np.testing.assert_array_equal(x, y)
    assert decoded == []
    levels = [0.90, 0.95, 0.98]
    fresh = links.NearDuplicates(cache_dir=str(tmp_path / "fresh")).scored_pairs(df, emb, 0.90, levels=levels)
    got = nd.scored_pairs(df, emb, 0.90, levels=levels)
    for lev in levels:                 # the groups at each level (the scores of skipped pairs are upper bounds)
        np.testing.assert_array_equal(links.components(len(df), *[a[got[2] >= lev] for a in got[:2]]),
                                      links.components(len(df), *[a[fresh[2] >= lev] for a in fresh[:2]]))


def test_a_greyscale_set_keeps_its_pairs_apart_from_the_three_channel_path(tmp_path):
    from imgcls import links
    root = tmp_path / "data"
    for k, im in enumerate(_images()[:10]):
        (root / "c").mkdir(parents=True, exist_ok=True)
        im.convert("L").save(root / "c" / f"img{k:02d}.png")
    df = _scan(root)
    links.NearDuplicates(cache_dir=str(tmp_path / "cache")).scored_pairs(df, np.zeros((len(df), 8), np.float32))
    assert [f.name.split("_")[3] for f in (tmp_path / "cache").glob("verified_pairs_*.npz")] == ["grey"]


@pytest.mark.parametrize("sha", ["", "abc"])
def test_a_row_without_a_content_hash_is_never_kept(sha):
    import pandas as pd

    from imgcls.clean.pair_cache import content_keys
    keys = content_keys(pd.DataFrame({"sha256": [sha, "0123456789abcdef" + "0" * 48]}))
    assert keys[0] == 0 and keys[1] == 0x0123456789abcdef


def test_a_cache_that_cannot_be_written_is_said_and_the_run_goes_on(tmp_path, monkeypatch):
    from imgcls import links
    df = _scan(_folder(tmp_path / "data"))
    (tmp_path / "not_a_folder").write_text("")
    said = []
    monkeypatch.setattr("imgcls.console.warn", lambda msg, *a, **k: said.append(msg))
    emb = np.zeros((len(df), 8), np.float32)
    got = links.NearDuplicates(cache_dir=str(tmp_path / "not_a_folder")).scored_pairs(df, emb, 0.90)
    want = links.NearDuplicates(cache_dir=str(tmp_path / "cache")).scored_pairs(df, emb, 0.90)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    assert len(said) == 3 and all("not written" in w for w in said), said      # each cache file says so once
    assert "thumbnail-summary cache" in said[0] and "candidate-pair cache" in said[1], said
    assert "verifies these pairs again" in said[2], said


def test_temporary_files_a_killed_run_left_in_the_cache_are_swept_when_it_is_opened(tmp_path):
    """A kill -9 during a cache write (embedding shards, the photo features, the verified pairs) left its atomic_path
    temporary file in $IMGCLS_CACHE for good. Each cache now sweeps them when it opens its folder: only the caches'
    own temporary names, and only those untouched for an hour, so a concurrent run's file being written stays."""
    import os
    import time

    import pandas as pd

    from imgcls import embed, fsutil
    from imgcls.clean.features import FeatureCache
    from imgcls.clean.pair_cache import PairCache, SummaryCache
    stale_at = time.time() - fsutil.STALE_TEMP_SECONDS - 60
    openers = {"embeddings": lambda d: embed.embed_manifest(
                   pd.DataFrame({"path": ["gone.png"], "sha256": ["ab"], "error": ["not an image"]}), cache_dir=d),
               "photo features": FeatureCache, "pairs": lambda d: PairCache(d, False), "summaries": SummaryCache}
    for what, open_cache in openers.items():
        d = tmp_path / what.replace(" ", "_")
        (d / "tf_efficientnet_lite0_224.parts").mkdir(parents=True)
        stale = [d / ".photo_features_0123abcd.npz.Ab12Cd34.tmp.npz",
                 d / "tf_efficientnet_lite0_224.parts" / ".shard-9f86d081.npz.x_Y7zQ2k.tmp.npz"]
        kept = [d / ".verified_pairs_96px_rgb_0123.npz.Qw3rTy9u.tmp.npz",     # a concurrent run's, being written
                d / ".notes.Ab12Cd34.tmp",                                  # not a cache's file
                d / "tf_efficientnet_lite0_224.parts" / "shard-9f86d081.npz"]
        for f in stale + kept:
            f.write_bytes(b"x")
        for f in stale + kept[1:]:
            os.utime(f, (stale_at, stale_at))
        open_cache(d)
        assert [f.exists() for f in stale + kept] == [False] * len(stale) + [True] * len(kept), what


def test_a_candidate_search_is_kept_by_its_input_and_a_file_that_does_not_fit_is_searched_again(tmp_path,
                                                                                                  monkeypatch):
    from imgcls.clean import near_dup, pair_cache
    rng = np.random.default_rng(0)
    sums = rng.integers(0, 9000, (12, near_dup.TINY, near_dup.TINY, 3)).astype(pair_cache.SUMS)
    sums[6:] = sums[:6]                                  # six pairs of equal descriptors
    emb = rng.normal(size=(12, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    searches = []
    real = near_dup.candidate_pairs
    monkeypatch.setattr(near_dup, "candidate_pairs", lambda *a, **k: searches.append(1) or real(*a, **k))
    cache = pair_cache.CandidateCache(tmp_path)
    want = cache.pairs(emb, sums, 0.8)
    assert len(want[0]) >= 6 and len(searches) == 1
    for x, y in zip(cache.pairs(emb, sums, 0.8), want):              # the same input: taken, not searched
        np.testing.assert_array_equal(x, y)
    assert len(searches) == 1
    emb2 = emb.copy()
    emb2[0, 0] += 1e-6                                               # any other number is another search
    cache.pairs(emb2, sums, 0.8)
    cache.pairs(emb, sums, 0.7)
    assert len(searches) == 3
    said = []
    monkeypatch.setattr("imgcls.console.warn", lambda msg, *a, **k: said.append(msg))
    for f in tmp_path.glob("candidate_pairs_*.npz"):
        f.write_bytes(b"not an npz")
    for x, y in zip(cache.pairs(emb, sums, 0.8), want):
        np.testing.assert_array_equal(x, y)
    assert len(searches) == 4 and any("candidate-pair cache" in s and "ignored" in s for s in said), said
    for c in (0.6, 0.5, 0.4):                                        # the last KEPT_SEARCHES searches are kept
        cache.pairs(emb, sums, c)
    assert len(list(tmp_path.glob("candidate_pairs_*.npz"))) == pair_cache.KEPT_SEARCHES


def test_a_candidate_search_is_kept_when_another_run_prunes_the_same_files_at_once(tmp_path, monkeypatch):
    """Two runs sharing the cache folder each keep their search and prune the older ones: a file the other run
    removed between this one's listing and its look at the file's age was a FileNotFoundError traceback, after the
    search. The file is gone either way: the prune goes on without it."""
    from pathlib import Path

    from imgcls.clean import pair_cache
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 8)).astype(np.float32)
    cache = pair_cache.CandidateCache(tmp_path)
    for floor in (0.9, 0.8):
        cache.scored(emb + floor, 0.5)
    victim = min(tmp_path.glob("candidate_pairs_*.npz"), key=lambda p: p.stat().st_mtime)
    real = Path.stat

    def stat(self, *a, **k):
        if self == victim:
            victim.unlink(missing_ok=True)          # the other run's prune
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "stat", stat)
    cache.scored(emb, 0.5)
    assert len(list(tmp_path.glob("candidate_pairs_*.npz"))) == 2 and not victim.exists()


def test_split_on_clean_s_output_in_another_row_order_replays_clean_s_search_and_pairs(tmp_path, monkeypatch):
    """split sorts the rows by (root, path) while clean keeps its input's order (a DACON train.csv in id order): the
    search and each pair's orientation follow the images' content, not the row order, so split takes clean's
    candidates and replays every pair clean verified: no search, no verification, the same pairs and scores."""
    from imgcls import links
    from imgcls.clean import near_dup
    df = _scan(_folder(tmp_path / "data"))
    emb = np.zeros((len(df), 8), np.float32)          # candidates from the tiny thumbnails alone
    nd = links.NearDuplicates(cache_dir=str(tmp_path / "cache"))
    want = nd.scored_pairs(df, emb, 0.90)
    assert len(want[0]) >= 15
    order = np.random.default_rng(0).permutation(len(df))
    moved = df.iloc[order].reset_index(drop=True)
    counts = {"search": 0, "verify": 0}
    real_search, real_verify = near_dup.candidate_pairs, near_dup._verify_chunk
    monkeypatch.setattr(near_dup, "candidate_pairs",
                        lambda *a, **k: counts.__setitem__("search", counts["search"] + 1) or real_search(*a, **k))
    monkeypatch.setattr(near_dup, "_verify_chunk",
                        lambda *a: counts.__setitem__("verify", counts["verify"] + len(a[1])) or real_verify(*a))
    monkeypatch.setattr(near_dup, "local_agreement", _boom)
    i, j, s = nd.scored_pairs(moved, emb[order], 0.90)
    assert counts == {"search": 0, "verify": 0}
    assert (i < j).all()
    path = df["path"].to_numpy()
    got = {frozenset((moved["path"][a], moved["path"][b])): float(c) for a, b, c in zip(i, j, s)}
    assert got == {frozenset((path[a], path[b])): float(c) for a, b, c in zip(*want)}


def test_the_embedding_method_s_search_is_kept_and_taken_in_any_row_order_and_at_a_higher_floor(tmp_path,
                                                                                                 monkeypatch):
    """--dup-method embedding's cosine search goes through CandidateCache: the same rows (in any order) at the same
    floor or a higher one take it (the pairs at or above that floor, the same cosines); a lower floor, or another
    row set, is searched. The pairs are those of the search over the rows as given."""
    from imgcls import links
    from imgcls.clean import near_dup
    df = _scan(_folder(tmp_path / "data"))
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(df), 16)).astype(np.float32)
    emb[1::2] = emb[::2][:len(emb[1::2])] + 0.3 * rng.normal(size=(len(emb[1::2]), 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ok = np.ones(len(df), bool)
    ref = near_dup.pair_arrays(emb, 0.85, valid=ok)
    searches = []
    real = near_dup.pair_arrays
    monkeypatch.setattr(near_dup, "pair_arrays", lambda *a, **k: searches.append(a[1]) or real(*a, **k))
    nd = links.NearDuplicates(method="embedding", cache_dir=str(tmp_path / "cache"))
    want = nd.scored_pairs(df, emb, 0.85)
    assert searches == [0.85] and len(want[0]) >= 4
    np.testing.assert_array_equal(want[0], ref[0])
    np.testing.assert_array_equal(want[1], ref[1])
    np.testing.assert_allclose(want[2], ref[2], atol=1e-6)
    path = df["path"].to_numpy()

    def by_path(frame, got):
        return {frozenset((frame["path"][a], frame["path"][b])): float(c) for a, b, c in zip(*got)}
    order = rng.permutation(len(df))
    moved = df.iloc[order].reset_index(drop=True)
    assert by_path(moved, nd.scored_pairs(moved, emb[order], 0.85)) == by_path(df, want)
    high = nd.scored_pairs(df, emb, 0.95)
    assert searches == [0.85] and by_path(df, high) == {k: v for k, v in by_path(df, want).items() if v >= 0.95}
    nd.scored_pairs(df, emb, 0.5)                                     # lower than kept: searched
    assert searches == [0.85, 0.5]
    bad = df.copy()
    bad.loc[3, "error"] = "not an image"                              # another row set
    got = nd.scored_pairs(bad, emb, 0.85)
    assert searches == [0.85, 0.5, 0.85] and 3 not in np.r_[got[0], got[1]]
    assert path[3] not in {p for pair in by_path(bad, got) for p in pair}


def test_a_verification_stopped_half_way_keeps_what_it_verified_and_the_rerun_verifies_the_rest(tmp_path,
                                                                                               monkeypatch):
    """The verified pairs were written only once verification ended: a Ctrl-C during it (most of a clean of a large
    set) kept none, and the rerun verified every pair again. They are kept as verified (every SAVE_SECONDS, 0
    here): the rerun verifies only the pairs the stopped run had not, with the scores of a whole run."""
    from functools import partial

    from imgcls import links
    from imgcls.clean import near_dup, pair_cache
    df = _scan(_folder(tmp_path / "data"))
    emb = np.zeros((len(df), 8), np.float32)
    want = links.NearDuplicates(cache_dir=str(tmp_path / "whole")).scored_pairs(df, emb, 0.90)
    monkeypatch.setattr(pair_cache, "SAVE_SECONDS", 0.0)
    monkeypatch.setattr(near_dup, "global_scores", partial(near_dup.global_scores, chunk=4))
    real, scored = near_dup._verify_chunk, []

    def stopped_after_3(thumbs, a, b):
        if len(scored) == 3:
            raise KeyboardInterrupt
        scored.append(len(a))
        return real(thumbs, a, b)
    monkeypatch.setattr(near_dup, "_verify_chunk", stopped_after_3)
    nd = links.NearDuplicates(cache_dir=str(tmp_path / "cache"))
    with pytest.raises(KeyboardInterrupt):
        nd.scored_pairs(df, emb, 0.90)
    assert scored == [4, 4, 4]
    first = sum(scored)
    scored.clear()
    monkeypatch.setattr(near_dup, "_verify_chunk", lambda thumbs, a, b: scored.append(len(a)) or real(thumbs, a, b))
    for x, y in zip(nd.scored_pairs(df, emb, 0.90), want):
        np.testing.assert_array_equal(x, y)
    n_pairs = len(pair_cache.PairCache(str(tmp_path / "whole"), False).table)
    assert n_pairs > 20 and sum(scored) == n_pairs - first, (scored, n_pairs)


@pytest.mark.slow          # two cleans with the embedder (~12 s)
def test_a_warm_clean_says_in_one_line_what_its_caches_served(tmp_path, monkeypatch):
    """A clean whose every pass an earlier run's cache served (thumbnail numbers, photo features, embeddings, the
    candidate search, the verified pairs) said nothing of it: one line names what was reused; a first run, whose
    caches served nothing, says no such line."""
    from imgcls import console
    from imgcls.clean import CleanConfig, run_clean
    root = _folder(tmp_path / "data")
    said: list[str] = []
    monkeypatch.setattr(console, "info", lambda msg, key=None: said.append(msg))
    cfg = CleanConfig(embed_size=32, device="cpu", cache_dir=str(tmp_path / "cache"), embed_precision="fp32",
                      ood=False)          # photo features: test_the_cache_reuse_line_names_photo_features
    run_clean(root, tmp_path / "clean", cfg, workers=1)
    assert not any("reused from the cache" in m for m in said), said
    said.clear()
    run_clean(root, tmp_path / "clean", cfg, workers=1)
    line = [m for m in said if "reused from the cache" in m]
    assert len(line) == 1 and line[0].startswith(f"clean: reused from the cache in {tmp_path / 'cache'}: "), said
    for what in ("embeddings (tf_efficientnet_lite0, 32px) of 20 images", "thumbnail numbers of 20 images",
                 "the candidate-pair search", "the verification of "):
        assert what in line[0], line


def test_the_cache_reuse_line_names_photo_features_and_not_what_this_run_filled(tmp_path):
    """The photo features a cache served whole are named in cache_reuse's line; a cache this run filled (the
    embedding pass keeps both kinds of vector: the style pass after it finds its own) is not 'reused'."""
    from imgcls import console
    from imgcls import manifest as mf
    from imgcls.clean.features import feature_matrix
    df = _scan(_folder(tmp_path / "data"))
    feature_matrix(df, cache_dir=str(tmp_path / "cache"))
    said: list[str] = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(console, "info", lambda msg, key=None: said.append(msg))
        with console.cache_reuse("clean", tmp_path / "cache"):
            feature_matrix(df, cache_dir=str(tmp_path / "cache"))
            console.made("style.npz")
            console.reused("style embeddings of 20 images", key="style.npz")
    assert said == [f"clean: reused from the cache in {tmp_path / 'cache'}: photo features of 20 images"], said
    assert len(set(mf.content_hashes(df))) == 20


def test_the_cache_reuse_line_comes_before_the_out_of_domain_fit(monkeypatch):
    """A warm clean printed its 'reused from the cache' line as its passes' block ended: after the out-of-domain
    fit's bar (10-20 s of photo-style on 7,703 images), away from the passes it names. Now it is said as the
    detector's fit begins, every pass done."""
    from contextlib import contextmanager
    from imgcls import console
    from imgcls.clean.ood import PhotoFeatures
    from imgcls.clean.ood_base import OODInputs
    events: list[str] = []
    monkeypatch.setattr(console, "info", lambda msg, key=None: events.append(msg))

    @contextmanager
    def bar(description, total, transient=False):
        events.append(description)
        yield lambda n=1, status=None: None
    monkeypatch.setattr(console, "progress_bar", bar)
    f = np.random.default_rng(0).normal(size=(30, 4))
    with console.cache_reuse("clean", "cache"):
        console.reused("photo features of 30 images")
        PhotoFeatures().score(OODInputs(features=lambda: f, embeddings=None, pixels=None))
    assert events == ["clean: reused from the cache in cache: photo features of 30 images",
                      "out-of-domain fit (photo-features, 30 images)"], events


def test_a_save_while_verifying_writes_only_the_pairs_new_since_the_last(tmp_path, monkeypatch):
    """Each periodic save of a verification (PairCache.keeper, every SAVE_SECONDS) rewrote the whole cache file, every
    pair ever kept (1.2-1.4 s a save at fmnist_lt's size). A save now writes a shard of the pairs whose numbers changed
    since the last save, the file untouched; a cache opened after a stop reads the file and the shards, and the run's
    last store writes the whole file and removes its shards."""
    from imgcls.clean import pair_cache
    from imgcls.clean.near_dup import PairRecord
    n = 1000
    a = np.arange(1, n + 1, dtype=np.uint64)
    rec = PairRecord.empty(n)
    rec.glob[:], rec.how[:], rec.fresh[:] = 0.5, 1, True
    pair_cache.PairCache(tmp_path, False).store(a, a + np.uint64(10 ** 6), rec)       # an earlier run's pairs
    cache = pair_cache.PairCache(tmp_path, False)
    before = cache.path.stat()
    keys = np.arange(1, n + 4, dtype=np.uint64)            # those, and three new ones
    rec = cache.lookup(keys, keys + np.uint64(10 ** 6))
    save = cache.keeper(lambda: (keys, keys + np.uint64(10 ** 6), rec), seconds=0)
    written, savez = [], np.savez
    monkeypatch.setattr(np, "savez", lambda fh, **arrays: written.append(len(arrays["a"])) or savez(fh, **arrays))
    rec.glob[n:], rec.how[n:], rec.fresh[n:] = 0.9, 2, True     # the global stage of the new pairs
    save()
    rec.local[[5, n]], rec.local_floor[[5, n]], rec.fresh[5] = 0.7, 0.1, True   # the local stage of an old one, a new
    save()
    save()                                                          # nothing new since: nothing written
    assert written == [3, 2], written
    after = cache.path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)

    def kept() -> PairRecord:          # what a run stopped here would replay
        return pair_cache.PairCache(tmp_path, False).lookup(keys, keys + np.uint64(10 ** 6))
    for got in (kept(), None):
        if got is None:                 # the run's end: the whole file, its shards taken in and removed
            shards = {p: p.read_bytes() for p in cache.parts.iterdir()}
            rec.local[5] = 0.8                                      # newer than the shard's 0.7
            assert cache.store(keys, keys + np.uint64(10 ** 6), rec) == 4
            assert written[2:] == [n + 3] and not cache.parts.exists()
            got = kept()
            for p, data in shards.items():      # a shard the store could not remove: the file names it, not read
                p.parent.mkdir(exist_ok=True)
                p.write_bytes(data)
            assert kept().local[5] == np.float32(0.8)
        np.testing.assert_array_equal(got.glob, rec.glob)
        np.testing.assert_array_equal(got.how, rec.how)
        np.testing.assert_array_equal(got.local, rec.local)
        np.testing.assert_array_equal(got.local_floor, rec.local_floor)


def test_two_runs_sharing_the_cache_keep_each_other_s_photo_features_and_thumbnail_numbers(tmp_path):
    """Two runs on one cache folder (two cleans of different sets, clean and split at once), each having read the
    photo-feature and thumbnail-summary files before either wrote: the second write dropped the first's new
    entries, and the next run measured them again. A write now merges into the file as it is then."""
    from imgcls.clean.features import FEATURE_NAMES, FeatureCache
    from imgcls.clean.near_dup import TINY
    from imgcls.clean.pair_cache import SUMS, SummaryCache
    shas, rows = np.array(["a" * 64, "b" * 64]), np.arange(2)
    feats = np.arange(2 * len(FEATURE_NAMES), dtype=np.float32).reshape(2, -1)
    sums, grey = np.arange(2 * TINY * TINY * 3).reshape(2, TINY, TINY, 3).astype(SUMS), np.array([True, False])
    features, summaries = [FeatureCache(tmp_path) for _ in "12"], [SummaryCache(tmp_path) for _ in "12"]
    for k in rows:                                     # each run keeps its own image
        features[k].store(shas, rows[k:k + 1], feats)
        summaries[k].store(shas, rows[k:k + 1], sums, grey)
    out = np.full_like(feats, np.nan)
    assert not len(FeatureCache(tmp_path).fill(shas, rows, out)) and np.array_equal(out, feats)
    got_sums, got_grey, known = np.zeros_like(sums), np.zeros(2, bool), np.zeros(2, bool)
    assert not len(SummaryCache(tmp_path).fill(shas, rows, got_sums, got_grey, known))
    assert np.array_equal(got_sums, sums) and got_grey.tolist() == grey.tolist() and known.all()


def _add_after_all_read(path, key, barrier) -> None:
    from imgcls.embed import VectorCache
    cache = VectorCache(path, "t", 1, "features", "test cache")
    barrier.wait(30)                 # every process has read the file before any writes
    cache.add({key: np.full(3, len(key), np.float32)}, "measures it again")


def _at_once(target, path, each: list) -> None:
    """One forked process per item of `each` running target(path, item, barrier): every one reads the cache before
    any writes (the barrier); all end well."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(each))
    procs = [ctx.Process(target=target, args=(path, k, barrier)) for k in each]
    for p in procs:
        p.start()
    for p in procs:
        p.join(45)
    assert [p.exitcode for p in procs] == [0] * len(each)


@pytest.mark.timeout(60)
def test_processes_writing_one_cache_file_at_once_keep_every_one_s_entries(tmp_path):
    """Real processes: four read the file, then all write at once; it ends with the entries of every one."""
    from imgcls.embed import read_vectors
    path, keys = tmp_path / "c.npz", ["a", "bb", "ccc", "dddd"]
    _at_once(_add_after_all_read, path, keys)
    kept, why = read_vectors(path, "t", 1, "features")
    assert not why and sorted(kept) == keys and all((kept[k] == len(k)).all() for k in keys)


def _record(n: int, glob: float):
    from imgcls.clean.near_dup import PairRecord
    rec = PairRecord.empty(n)
    rec.glob[:], rec.how[:], rec.fresh[:] = glob, 1, True
    return rec


def test_two_runs_sharing_the_cache_keep_each_other_s_verified_pairs(tmp_path):
    """Two runs on one cache folder (two cleans of different sets, clean and split at once), each having read the
    verified pairs before either wrote: the second's store dropped the first's pairs (verified again by the next
    run). A store now merges into the file and shards as they are then, each pair with its own run's numbers."""
    from imgcls.clean.pair_cache import PairCache
    first, second = PairCache(tmp_path, False), PairCache(tmp_path, False)
    a, b = np.arange(1, 4, dtype=np.uint64), np.arange(11, 15, dtype=np.uint64)
    half = second.keeper(lambda: (b[:2], b[:2] + np.uint64(100), _record(2, 0.6)), seconds=0)
    half()                                  # the second run's save while it verifies: a shard
    assert first.store(a, a + np.uint64(100), _record(3, 0.5)) == 3      # takes that shard in
    assert second.store(b, b + np.uint64(100), _record(4, 0.6)) == 4
    keys = np.r_[a, b]
    got = PairCache(tmp_path, False).lookup(keys, keys + np.uint64(100))
    assert got.glob.tolist() == [0.5] * 3 + [np.float32(0.6)] * 4 and not second.parts.exists()


def _store_after_all_read(path, k, barrier) -> None:
    from imgcls.clean.pair_cache import PairCache
    cache = PairCache(path, False)
    barrier.wait(30)                 # every process has read the file before any writes
    keys = np.arange(10 * k + 1, 10 * k + 4, dtype=np.uint64)
    cache.store(keys, keys + np.uint64(100), _record(3, k / 10))


@pytest.mark.timeout(60)
def test_processes_storing_verified_pairs_at_once_keep_every_one_s_pairs(tmp_path):
    from imgcls.clean.pair_cache import PairCache
    runs = [1, 2, 3]
    _at_once(_store_after_all_read, tmp_path, runs)
    keys = np.concatenate([np.arange(10 * k + 1, 10 * k + 4, dtype=np.uint64) for k in runs])
    got = PairCache(tmp_path, False).lookup(keys, keys + np.uint64(100))
    assert got.glob.tolist() == [np.float32(k / 10) for k in runs for _ in range(3)]


def test_a_save_is_written_when_another_run_removes_the_shard_folder_meanwhile(tmp_path, monkeypatch):
    """A run whose store removed the empty shard folder between another run's mkdir and its mkstemp
    (fsutil.atomic_path): that run's save while verifying was "not written" (a warning, the pairs verified again by
    the next run). The writer makes the folder again and writes its shard."""
    from test_clean import _removed_once_before_mkstemp

    from imgcls.clean import pair_cache
    from imgcls.clean.near_dup import PairRecord
    said: list[str] = []
    monkeypatch.setattr("imgcls.console.warn", said.append)
    cache = pair_cache.PairCache(tmp_path, False)
    _removed_once_before_mkstemp(monkeypatch, cache.parts)
    cache.parts.mkdir()                  # made by this run's mkdir, empty: the other run's rmdir takes it
    keys, rec = np.arange(1, 4, dtype=np.uint64), PairRecord.empty(3)
    save = cache.keeper(lambda: (keys, keys + np.uint64(100), rec), seconds=0)
    rec.glob[:], rec.how[:], rec.fresh[:] = 0.5, 1, True        # verified since the keeper was made
    save()
    assert not said and len(list(cache.parts.glob("shard-*.npz"))) == 1
    assert pair_cache.PairCache(tmp_path, False).lookup(keys, keys + np.uint64(100)).glob.tolist() == [0.5] * 3


def test_a_shard_another_run_took_in_and_removed_meanwhile_is_not_said_to_not_fit(tmp_path, monkeypatch):
    """A cache opened while another run's store took the shards in and removed them (between this one's listing and
    its read): each was warned "does not fit (FileNotFoundError ...)". Such a shard is passed over without a word."""
    from pathlib import Path

    from imgcls.clean import pair_cache
    from imgcls.clean.near_dup import PairRecord
    keys, rec = np.arange(1, 4, dtype=np.uint64), PairRecord.empty(3)
    writer = pair_cache.PairCache(tmp_path, False)
    save = writer.keeper(lambda: (keys, keys + np.uint64(100), rec), seconds=0)
    rec.glob[:], rec.how[:], rec.fresh[:] = 0.5, 1, True
    save()
    shard = next(writer.parts.glob("shard-*.npz"))
    said: list[str] = []
    monkeypatch.setattr("imgcls.console.warn", said.append)
    real = np.load

    def load(path, *a, **k):
        if Path(path) == shard:
            shard.unlink()              # the other run's store, ending
        return real(path, *a, **k)
    monkeypatch.setattr(np, "load", load)
    assert not len(pair_cache.PairCache(tmp_path, False).table) and not said, said


@pytest.mark.timeout(60)
def test_a_cache_opened_as_another_run_stores_has_the_pairs_of_the_shards_it_took_in(tmp_path, monkeypatch):
    """A cache opened read the file, then listed the shards: another run's store in between wrote the file taking
    them in and removed them, and the cache had neither (those pairs were verified again). The shards are read first,
    then the file: a store writes the file before it removes the shards."""
    from pathlib import Path

    from imgcls.clean import pair_cache
    from imgcls.clean.near_dup import PairRecord
    keys, rec = np.arange(1, 4, dtype=np.uint64), PairRecord.empty(3)
    writer = pair_cache.PairCache(tmp_path, False)
    save = writer.keeper(lambda: (keys, keys + np.uint64(100), rec), seconds=0)
    rec.glob[:], rec.how[:], rec.fresh[:] = 0.5, 1, True
    save()                                      # the other run's save while it verifies: a shard
    real, stored = np.load, []

    def load(path, *a, **k):                    # as this run opens the cache, the other one stores
        if not stored and Path(path).parent == writer.parts:
            stored.append(None)                 # once: the store reads the shards too
            stored[0] = writer.store(keys, keys + np.uint64(100), rec)
        return real(path, *a, **k)
    monkeypatch.setattr(np, "load", load)
    got = pair_cache.PairCache(tmp_path, False).lookup(keys, keys + np.uint64(100))
    assert stored == [3] and not writer.parts.exists() and got.glob.tolist() == [0.5] * 3
