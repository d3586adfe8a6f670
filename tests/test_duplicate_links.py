"""What clean's duplicate groups mean to train (issue 17): clean --duplicates link keeps every member and names its
group; train's fallback --val-split keeps a group on one side; --dup-weight group makes a group one sample per
epoch; the --conflicts truth table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imgcls.clean.duplicates import conflict_keepers


@pytest.mark.parametrize("labels, policy, kept", [
    # one label: it stays whatever the policy
    ("aaa", "majority", {"a"}), ("aaa", "drop", {"a"}), ("aaa", "all", {"a"}), ("aaa", "majority-ties", {"a"}),
    # a clear majority
    ("aab", "majority", {"a"}), ("aab", "majority-ties", {"a"}), ("aab", "all", {"a", "b"}), ("aab", "drop", set()),
    # a tie: majority keeps none, majority-ties keeps both tied labels, not a third smaller one
    ("ab", "majority", set()), ("ab", "majority-ties", {"a", "b"}), ("ab", "all", {"a", "b"}), ("ab", "drop", set()),
    ("aabbc", "majority", set()), ("aabbc", "majority-ties", {"a", "b"}), ("aabbc", "all", {"a", "b", "c"}),
    # the majority label need not come first in keep order (never decided by path order)
    ("baa", "majority", {"a"}), ("bba", "majority", {"b"}),
])
def test_conflict_policy_truth_table(labels, policy, kept):
    lab = np.array(list(labels))
    order = list(range(len(lab)))
    keepers, conflict = conflict_keepers(order, lab, policy)
    assert set(keepers) == kept
    assert conflict == (len(set(labels)) > 1)
    for label, row in keepers.items():          # each label that stays is represented by its first row in order
        assert row == next(i for i in order if lab[i] == label)


@pytest.mark.parametrize("labels, near, kept", [
    ("ab", {"a": 3, "b": 1}, {"a", "b"}),       # both tied labels among the nearest images: both stay
    ("ab", {"b": 4, "c": 6}, {"b"}),            # a copy planted in an unrelated class a: the fitting label stays
    ("ab", {"c": 10}, set()),                   # neither: none (as majority)
    ("aabbc", {"c": 10, "a": 1}, {"a"}),        # c is no tied label: its neighbours do not bring it back
])
def test_majority_knn_breaks_a_tie_by_the_nearest_images_labels(labels, near, kept):
    from collections import Counter
    lab = np.array(list(labels))
    calls = []
    keepers, conflict = conflict_keepers(list(range(len(lab))), lab, "majority-knn",
                                         lambda tied: calls.append(sorted(tied)) or Counter(near))
    assert set(keepers) == kept and conflict and calls == [["a", "b"]]       # asked once, about the tied labels


def test_majority_knn_asks_no_neighbours_without_a_tie():
    for labels in ("aab", "aaa"):
        lab = np.array(list(labels))
        assert set(conflict_keepers([0, 1, 2], lab, "majority-knn", lambda tied: pytest.fail("asked"))[0]) == {"a"}


def _embedded(labels: list[str], directions: list[int], sha: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(labels)
    df = pd.DataFrame({"root": "r", "path": [f"{labels[k]}/{k:03d}.png" for k in range(n)], "label": labels,
                       "sha256": sha, "error": "", "width": 32, "height": 32, "keep": True, "reason": "",
                       "dup_group": "", "duplicate_of": "", "label_conflict": False})
    rng = np.random.default_rng(0)
    emb = np.eye(8)[directions] + rng.normal(0, 0.05, (n, 8))
    return df, emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_mark_duplicates_majority_knn_on_embeddings():
    from imgcls.clean import CleanConfig
    from imgcls.clean.duplicates import mark_duplicates, neighbour_labels
    # three families of drawings (embedding directions 0, 1, 2): 0 filed under a and b, 1 under c, 2 under d
    labels = ["a"] * 6 + ["b"] * 6 + ["c"] * 12 + ["d"] * 12
    directions = [0] * 12 + [1] * 12 + [2] * 12
    sha = [f"h{k}" for k in range(36)]
    # tie 1: a drawing of family 0 filed under a and b (byte copies): both labels fit
    labels += ["a", "b"]; directions += [0, 0]; sha += ["t1", "t1"]
    # tie 2: a family-1 drawing (c-like) copied into a and c: the copy in a is planted, c stays
    labels += ["a", "c"]; directions += [1, 1]; sha += ["t2", "t2"]
    # tie 3: a drawing of a fourth family filed under a and c, nearer d's: neither label fits, none stays
    labels += ["a", "c"]; directions += [3, 3]; sha += ["t3", "t3"]
    df, emb = _embedded(labels, directions, sha)
    emb[-2:] = emb[-2:] * 0.6 + np.eye(8)[2] * 0.4
    emb[-2:] /= np.linalg.norm(emb[-2:], axis=1, keepdims=True)
    out, votes = mark_duplicates(df.copy(), emb, CleanConfig(near_dup=False))
    keep = dict(zip(zip(out["sha256"], out["label"]), out["keep"]))
    assert keep[("t1", "a")] and keep[("t1", "b")]
    assert keep[("t2", "c")] and not keep[("t2", "a")]
    assert not keep[("t3", "a")] and not keep[("t3", "c")]
    assert (out.loc[~out["keep"], "reason"] == "label_conflict").all()
    assert len(votes) == 3 and all(sum(v.values()) <= 10 for v in votes.values())
    g3 = out.loc[out["sha256"] == "t3", "dup_group"].iat[0]
    assert votes[g3] == {"a": 0, "c": 0}
    # the group's own members never vote for it; unreadable rows neither
    ok = np.ones(len(df), bool)
    ok[:6] = False
    near = neighbour_labels(emb, [36, 37], np.array(labels), ok, k=10)
    assert sum(near.values()) == 10 and "a" not in near


def test_mark_duplicates_computes_embeddings_only_for_a_tie():
    from imgcls.clean import CleanConfig
    from imgcls.clean.duplicates import mark_duplicates
    df, emb = _embedded(["a", "a", "b", "b"], [0, 0, 1, 1], ["x", "x", "y", "z"])     # one group, one label
    calls = []
    out = mark_duplicates(df.copy(), None, CleanConfig(near_dup=False), embeddings=lambda: calls.append(1) or emb)
    assert calls == [] and out.tie_votes == {}
    df, emb = _embedded(["a", "b", "b", "a"], [0, 0, 1, 1], ["x", "x", "y", "z"])     # a tie
    out = mark_duplicates(df.copy(), None, CleanConfig(near_dup=False), embeddings=lambda: calls.append(1) or emb)
    assert calls == [1] and len(out.tie_votes) == 1 and not out.frame.attrs


def test_conflict_policy_order_independent():
    lab = np.array(["b", "a", "a", "b", "a"])
    for perm in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [3, 0, 4, 1, 2]):
        assert set(conflict_keepers(perm, lab, "majority")[0]) == {"a"}


def _df(groups: list[str], labels: list[str], col: str) -> pd.DataFrame:
    n = len(groups)
    df = pd.DataFrame({"root": "r", "path": [f"{labels[k]}/{k:03d}.png" for k in range(n)], "label": labels,
                       "sha256": [f"h{k}" for k in range(n)], "error": ""})
    if col == "sha256":
        df["sha256"] = [g or f"h{k}" for k, g in enumerate(groups)]
    else:
        df[col] = groups
    return df


@pytest.mark.parametrize("col", ["sha256", "dup_group"])
def test_fallback_val_split_keeps_each_duplicate_group_on_one_side(col):
    from imgcls.train.data import assign_split
    rng = np.random.default_rng(0)
    groups, labels = [], []
    for g in range(30):                 # 30 groups of 2-5 copies and 40 singletons, two classes
        k = int(rng.integers(2, 6))
        groups += [f"g{g}"] * k
        labels += ["ab"[g % 2]] * k
    groups += [""] * 40
    labels += ["ab"[k % 2] for k in range(40)]
    df = _df(groups, labels, col)
    for seed in range(5):
        train, val = assign_split(df, None, 0.2, seed)
        assert not (train & val).any() and (train | val).all() and val.any()
        key = df[col].to_numpy()
        linked = pd.Series(key[key != ""] if col == "dup_group" else key)
        for g in set(linked):
            if g.startswith("g"):
                sides = {bool(v) for v, k in zip(val, key) if k == g}
                assert len(sides) == 1, f"group {g} on both sides (seed {seed})"
        assert 0.1 < val.mean() < 0.35


def test_fallback_val_split_validates_unlinked_images_first():
    """Linked groups train while a class has enough unlinked images for its validation share (whole families
    held out cost test macro-F1); the share is counted in images, per class; a class made only of groups still
    validates on whole groups and keeps one to train."""
    from imgcls.train.data import assign_split
    groups = [f"g{g}" for g in range(10) for _ in range(3)] + [""] * 20        # class a: 10 trios + 20 singles
    labels = ["a"] * 50
    groups += [f"h{g}" for g in range(5) for _ in range(4)]                     # class b: only groups of 4
    labels += ["b"] * 20
    df = _df(groups, labels, "dup_group")
    for seed in range(4):
        train, val = assign_split(df, None, 0.2, seed)
        a, b = df["label"].eq("a").to_numpy(), df["label"].eq("b").to_numpy()
        assert not (train & val).any() and (train | val).all()
        assert val[a].sum() == 10 and (df["dup_group"].to_numpy()[a & val] == "").all()   # 20% of 50, all singles
        assert val[b].sum() == 4 and train[b].sum() == 16                                  # one whole group of 4
    assert len({tuple(assign_split(df, None, 0.2, s)[1]) for s in range(4)}) > 1           # seeded, not fixed


def test_fallback_val_split_without_links_is_the_plain_stratified_split():
    from sklearn.model_selection import train_test_split

    from imgcls.train.data import assign_split
    df = _df([""] * 40, ["ab"[k % 3 == 0] for k in range(40)], "dup_group")
    train, val = assign_split(df, None, 0.25, 3)
    tr, va = train_test_split(np.arange(40), test_size=0.25, random_state=3, stratify=df["label"])
    assert set(np.flatnonzero(val)) == set(va) and set(np.flatnonzero(train)) == set(tr)


def test_dup_weight_group_one_slot_per_group_members_share_it():
    from imgcls.train.data import duplicate_units, epoch_indices, oversample_goals, unit_labels
    # class 0: a group of 4 and 2 singletons; class 1: a group of 2 (sha256) and 1 singleton; one dup_group spans
    # both classes (a picture kept under two labels): it counts once for each
    frame = pd.DataFrame({"dup_group": ["g", "g", "g", "g", "", "", "", "", "", "x", "x"],
                          "sha256": ["1", "2", "3", "4", "5", "6", "s", "s", "9", "10", "11"]})
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1])
    units = duplicate_units(frame, labels)
    assert units.max() + 1 == 7                             # g, 2 singletons, s, 1 singleton, x|0, x|1
    assert len({units[k] for k in range(4)}) == 1 and units[6] == units[7] and units[9] != units[10]
    counts = np.zeros(len(labels))
    epochs = 4000
    for e in range(epochs):
        idx = epoch_indices(len(labels), labels, 0, e, False, units=units)
        assert len(idx) == 7
        assert sorted(units[idx].tolist()) == list(range(7))      # every unit exactly once per epoch
        np.add.at(counts, idx, 1)
    size = np.bincount(units)[units]
    np.testing.assert_allclose(counts / epochs, 1 / size, atol=0.04)    # member weight 1/|group|: a group sums to 1
    # --oversample and --sampler weighted count units, not rows
    ul = unit_labels(units, labels)
    assert ul.tolist().count(0) == 4 and ul.tolist().count(1) == 3
    goals = oversample_goals(ul, "max", 4)
    assert goals.tolist() == [4, 4]
    idx = epoch_indices(len(labels), labels, 0, 0, False, goals=goals, units=units)
    assert len(idx) == 8 and np.bincount(labels[idx]).tolist() == [4, 4]
    w = np.zeros(2)
    for e in range(2000):
        np.add.at(w, labels[epoch_indices(len(labels), labels, 1, e, True, units=units)], 1)
    assert abs(w[0] / w.sum() - 0.5) < 0.03                # balanced classes, counted in units


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_dup_weight_group_reaches_the_training_epoch(tmp_path, monkeypatch):
    """train --dup-weight group: the epoch visits one member of each byte-identical group (fails if the option did
    not reach the sampler: the epoch would visit every row)."""
    from typer.testing import CliRunner

    from conftest import make_image_folder
    from imgcls.cli import app
    from imgcls.train import loop
    src = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6}, size=(36, 36))
    for k, f in enumerate(sorted((src / "a").glob("*.png"))):     # a byte copy of every image of class a
        (src / "a" / f"copy{k}.png").write_bytes(f.read_bytes())
    seen = {}
    real = loop.epoch_indices

    def spy(n, labels, *a, **k):
        out = real(n, labels, *a, **k)
        seen.setdefault("calls", []).append((n, k.get("units"), len(out)))
        return out
    monkeypatch.setattr(loop, "epoch_indices", spy)
    args = ["train", str(src), "--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--workers", "0",
            "--device", "cpu", "--epochs", "1", "--batch-size", "4", "--aug", "none", "--out", str(tmp_path / "runs"),
            "-q"]
    r = CliRunner().invoke(app, [*args, "--name", "g", "--dup-weight", "group"])
    assert r.exit_code == 0, r.output
    n, units, visited = seen["calls"][-1]
    u = int(units.max()) + 1
    assert units is not None and n - u >= 3 and visited in (u, u - 1)     # minus a lone last item (BatchNorm)
    assert np.bincount(units).max() == 2
    import yaml
    assert yaml.safe_load((tmp_path / "runs" / "g" / "config.yaml").read_text())["dup_weight"] == "group"


def test_neighbour_votes_in_blocks_match_one_group_at_a_time(monkeypatch):
    """The batched vote (blocks of groups in one matrix product) counts what the vote of each group alone counts,
    whatever the block size; its members and unreadable rows never vote."""
    import imgcls.clean.duplicates as dup
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((60, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = rng.choice(list("abcde"), 60)
    ok = rng.random(60) > 0.1
    groups = [[int(i) for i in rng.choice(np.flatnonzero(ok), 2 + k % 3, replace=False)] for k in range(7)]
    alone = []
    for idx in groups:
        sim = emb @ (c := emb[idx].mean(0) / np.linalg.norm(emb[idx].mean(0)))
        sim[idx] = -np.inf
        sim[~ok] = -np.inf
        near = np.argsort(-sim)[:10]
        alone.append({lab: int((labels[near] == lab).sum()) for lab in set(labels[near])})
    for block in (60, 120, 10_000):                       # 1, 2 and all 7 groups per matrix product
        monkeypatch.setattr(dup, "NEIGHBOUR_BLOCK", block)
        assert dup.neighbour_votes(emb, groups, labels, ok) == alone


def test_a_losing_label_points_at_the_first_kept_member():
    from imgcls.clean import CleanConfig
    from imgcls.clean.duplicates import mark_duplicates
    # one drawing: twice under a, twice under b, once under c (majority-ties keeps a and b, c loses)
    df, emb = _embedded(["c", "b", "a", "b", "a"], [0] * 5, ["x"] * 5)
    df["width"] = [32, 32, 32, 64, 32]                    # b/003.png is the largest: first in keep order
    out = mark_duplicates(df.copy(), emb, CleanConfig(near_dup=False, conflicts="majority-ties")).frame
    out = out.set_index("path")
    assert out.loc["c/000.png", "reason"] == "label_conflict"
    assert out.loc["c/000.png", "duplicate_of"] == "b/003.png"
    assert out.loc["a/004.png", "duplicate_of"] == "a/002.png" and out.loc["b/001.png", "duplicate_of"] == "b/003.png"
    assert out["keep"].tolist() == [False, True, True, True, True]


def test_what_a_later_stage_removes_is_not_said_to_be_the_conflict_policys():
    """A duplicate group whose label --conflicts kept, its images then removed as out of domain (a photo copied
    into two classes) or undersampled: clean's line said "no label kept in 1 (--conflicts all)", which --conflicts
    all never does, and the report's conflict table "none (tie or --conflicts drop)"."""
    from imgcls.clean import CleanConfig
    from imgcls.clean.duplicates import conflict_table, group_outcomes, mark_duplicates
    df, emb = _embedded(["a", "b", "a", "c", "a", "b"], [0, 0, 1, 1, 2, 2], ["x", "x", "y", "y", "z", "z"])
    for policy, kept in (("all", "every tied label kept"), ("majority-ties", "every tied label kept"),
                         ("majority", "no label kept"), ("drop", "no label kept")):
        out = mark_duplicates(df.copy(), emb, CleanConfig(near_dup=False, conflicts=policy)).frame
        flagged = out["sha256"].eq("x") & out["keep"]            # what the out-of-domain stage does after it
        out.loc[flagged, "keep"], out.loc[flagged, "reason"] = False, "out_of_domain"
        said = group_outcomes(out, policy, {})
        assert f"3 groups whose labels tie: {kept} (--conflicts {policy})" in said, said
        table = {r["dup_group"]: r["kept"] for r in conflict_table(out)}
        first = out.loc[out["sha256"] == "x", "dup_group"].iat[0]
        if policy in ("all", "majority-ties"):
            assert "removed (out_of_domain)" in said and "2 removed (out_of_domain)" in said, said
            assert table[first] == ("none: --conflicts kept a label, its images then removed: a/000.png (a) as "
                                    "out_of_domain, b/001.png (b) as out_of_domain"), table
        else:
            assert table[first] == "none (tie or --conflicts drop)", table


@pytest.mark.timeout(60)
def test_duplicate_stage_bookkeeping_scales(work, monkeypatch):
    """20,000 images in 4,000 copy groups, 700-odd of them label ties, against 4,000 images (150-odd ties) in the same
    test: grouping, the tie votes and the conflict table (a frame lookup per group took 16 s). Measured as work, not
    wall seconds (a 5 s bound failed on a loaded 2-core machine): the pandas operations do not grow with the groups;
    the CPU seconds of the bookkeeping grow at most as the rows, 5x (~3x measured, also at load 8; quadratic 25x).
    The tie votes are timed apart: each tie's nearest images are searched among all of them, by design ties x
    images, 25x here; their CPU per tie and image may at most double."""
    import time

    import imgcls.clean.duplicates as dup
    from imgcls.clean import CleanConfig
    from synthetic import copy_groups_frame
    voting = [0.0]
    neighbour_votes = dup.neighbour_votes

    def timed_votes(*a, **k):
        t = time.process_time()
        try:
            return neighbour_votes(*a, **k)
        finally:
            voting[0] += time.process_time() - t
    monkeypatch.setattr(dup, "neighbour_votes", timed_votes)

    def stage(n):
        """(pandas operations, CPU seconds of the bookkeeping and of the votes (least of two runs), the results)"""
        df = copy_groups_frame(n)
        rng = np.random.default_rng(0)
        emb = rng.standard_normal((n, 64)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        spent = []

        def run():
            voting[0] = 0.0
            t = time.process_time()
            out, votes = dup.mark_duplicates(df.copy(), emb, CleanConfig(near_dup=False))
            rows = dup.conflict_table(out, votes)
            spent.append((time.process_time() - t - voting[0], voting[0]))
            return out, votes, rows
        ops, _, result = work(run)
        return ops, min(b for b, _ in spent), min(v for _, v in spent), result

    ops_small, cpu_small, vote_small, (_, votes_small, _) = stage(4_000)
    ops, cpu, vote, (out, votes, rows) = stage(20_000)
    assert (out["dup_group"] != "").sum() == 2 * (20_000 // 5)
    assert len(rows) == out.loc[out["label_conflict"], "dup_group"].nunique() > 500
    assert len(votes) > 500 and len(votes_small) > 100
    assert ops <= ops_small + 10, (ops, ops_small)               # 3,200 more groups: no pandas call per group
    # linear is 5x; 8x leaves room for a loaded machine (5.2x seen beside seven test processes), quadratic is 25x
    assert cpu < 8 * cpu_small, f"{cpu:.2f} s CPU for 5x the rows of {cpu_small:.2f} s"
    searched = len(votes) * 20_000 / (len(votes_small) * 4_000)     # ties x images: ~25x
    assert vote < 2 * searched * vote_small, f"votes {vote:.2f} s CPU: {searched:.0f}x the search of {vote_small:.2f} s"


def _report_inputs(tmp_path, n: int, seed: int = 1):
    """(frame, summary) write_clean_report takes for n rows in n / 5 content groups: a quarter each of pairs, pairs,
    families of 3 and families of 5."""
    from dataclasses import asdict

    from imgcls.clean import CleanConfig
    from imgcls.clean.duplicates import conflict_table, families, mark_duplicates
    rng = np.random.default_rng(seed)
    g, q = n // 5, n // 20
    sha = np.array([f"h{i}" for i in range(n)], dtype=object)
    src = rng.choice(n, g, replace=False)
    rest = np.setdiff1d(np.arange(n), src)
    for k, extra in enumerate((1, 1, 2, 4)):          # pairs, and families of 3 and 5
        take = rng.choice(rest, q * extra, replace=False)
        rest = np.setdiff1d(rest, take)
        sha[take] = np.repeat(sha[src[q * k:q * (k + 1)]], extra)
    labels = rng.integers(0, 17, n).astype(str)
    df = pd.DataFrame({"root": str(tmp_path), "path": [f"{lab}/{i}.png" for i, lab in enumerate(labels)],
                       "label": labels, "sha256": sha, "error": "", "width": 64, "height": 64, "keep": True,
                       "reason": "", "dup_group": "", "duplicate_of": "", "label_conflict": False,
                       "ood_score": rng.random(n)})
    emb = rng.standard_normal((n, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    out, votes = mark_duplicates(df, emb, CleanConfig(near_dup=False, conflicts="all"))
    fam = families(out)
    summary = {"config": asdict(CleanConfig()), "n_images": n, "kept": int(out["keep"].sum()), "removed": {},
               "label_conflict_groups": 0, "label_conflicts": conflict_table(out, votes),
               "families": fam, "threshold_sweep": []}
    return out, summary


@pytest.mark.timeout(60)
def test_clean_report_scales(tmp_path, work):
    """clean's report over 20,000 rows in 4,000 groups (families of 3 to 5 among them), on a frame whose `attrs` are
    large, against the report over 4,000 rows (800 groups) with no attrs, timed in the same test: a pandas call per
    group, each deep-copying the frame's attrs, took minutes when mark_duplicates still handed its tie votes over in
    them. Measured as work, not as wall seconds (a 5 s bound failed at load 7 on a shared 2-core machine): the number
    of pandas operations must not grow with the groups, and the CPU seconds may grow at most as the rows, 5x (a
    quadratic step: 25x)."""
    from imgcls.clean.report import write_clean_report
    small, small_summary = _report_inputs(tmp_path, 4_000)
    big, summary = _report_inputs(tmp_path, 20_000)
    big.attrs["votes"] = {f"g{k}": {"a": 1, "b": 2} for k in range(3000)}     # a large attrs, as a caller may set
    ops_small, cpu_small, _ = work(lambda: write_clean_report(tmp_path / "small.html", small, small_summary))
    ops, cpu, path = work(lambda: write_clean_report(tmp_path / "report.html", big, summary))
    html = path.read_text()
    assert summary["families"]["groups_of_3_or_more"] == 2000
    assert "Families of near-identical images (groups of 3 or more: 2000)" in html
    assert ops <= ops_small + 20, (ops, ops_small)           # 1,200 more groups of 3+: no pandas call per group
    assert cpu < 5 * cpu_small, f"{cpu:.2f} s CPU for 5x the rows of {cpu_small:.2f} s"


def test_clean_report_shows_linked_duplicates_and_says_when_nothing_is_out_of_domain(tmp_path):
    """The default --duplicates link removes nothing: the report shows each linked image beside its group's first
    member (it showed only removed pairs, so a default run's duplicates were never seen); an out-of-domain ranking
    where no image scored above 0 (photo-style with no population) says so instead of listing 60 scores of 0.000."""
    import html as htmlmod
    from dataclasses import asdict

    from conftest import make_image
    from imgcls.clean import CleanConfig
    from imgcls.clean.report import write_clean_report
    paths = ["a/0.png", "a/1.png", "b/2.png", "b/3.png"]
    for k, p in enumerate(paths):
        make_image(tmp_path / p, seed=k)
    df = pd.DataFrame({"root": str(tmp_path), "path": paths, "label": ["a", "a", "b", "b"], "keep": True,
                       "reason": "", "dup_group": ["d0", "d0", "", ""], "duplicate_of": ["", "a/0.png", "", ""],
                       "label_conflict": False, "error": "", "ood_score": 0.0, "width": 48, "height": 40})
    summary = {"config": asdict(CleanConfig()), "n_images": 4, "kept": 4, "removed": {},
               "label_conflict_groups": 0, "label_conflicts": [],
               "families": {"groups_of_3_or_more": 0, "images_in_them": 0, "pair_groups": 1}, "threshold_sweep": []}
    page = htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text())
    assert ("Linked duplicates: kept, each beside its group's first kept member, one split unit (1 image beyond one "
            "per group, in 1 group;") in page
    assert "linked a/1.png (a)" in page and "first a/0.png (a)" in page
    assert "no image scored above 0" in page and "score 0.000" not in page
    df["ood_score"] = [0.9, 0.1, 0.0, 0.2]
    df.loc[0, ["keep", "reason"]] = [False, "out_of_domain"]
    page = htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text())
    assert "photo-style: 1 of 4 scored images flagged out_of_domain" in page
    assert page.index("score 0.900 removed") < page.index("score 0.200 kept") < page.index("score 0.100 kept")


def test_clean_report_says_a_twin_a_later_stage_removed_is_not_kept(tmp_path):
    """A photo filed under a and b: --conflicts kept a, b's copy removed as label_conflict, then a's removed as out of
    domain. 'Removed duplicates beside their kept twin' showed b's copy beside "kept a/0.png (a)", an image clean
    did not keep."""
    import html as htmlmod
    from dataclasses import asdict

    from conftest import make_image
    from imgcls.clean import CleanConfig
    from imgcls.clean.report import write_clean_report
    paths = ["a/0.png", "b/1.png", "c/2.png"]
    for k, p in enumerate(paths):
        make_image(tmp_path / p, seed=k)
    df = pd.DataFrame({"root": str(tmp_path), "path": paths, "label": ["a", "b", "c"], "keep": [False, False, True],
                       "reason": ["out_of_domain", "label_conflict", ""], "dup_group": ["d0", "d0", ""],
                       "duplicate_of": ["", "a/0.png", ""], "label_conflict": [True, True, False], "error": "",
                       "ood_score": [0.9, 0.9, 0.0], "width": 48, "height": 40})
    summary = {"config": asdict(CleanConfig()), "n_images": 3, "kept": 1,
               "removed": {"out_of_domain": 1, "label_conflict": 1}, "label_conflict_groups": 1,
               "label_conflicts": [], "families": {"groups_of_3_or_more": 0, "images_in_them": 0, "pair_groups": 1},
               "threshold_sweep": []}
    page = htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text())
    assert "removed b/1.png (b)" in page and "kept a/0.png (a), itself removed: out of domain" in page


def test_clean_report_of_no_dedup_or_exact_only_says_what_was_not_searched(tmp_path):
    """clean --no-dedup's report said "duplicate groups spanning labels 0", "Label conflicts ... (0; --conflicts
    majority-knn)" and "none" under each duplicate section, for a set whose byte copies across classes clean had not
    looked for: read as a set without duplicates. It says the stage was off, as the out-of-domain section does."""
    import html as htmlmod
    from dataclasses import asdict

    from conftest import make_image
    from imgcls.clean import CleanConfig
    from imgcls.clean.report import write_clean_report
    make_image(tmp_path / "a/0.png", seed=0)
    df = pd.DataFrame({"root": str(tmp_path), "path": ["a/0.png"], "label": ["a"], "keep": True, "reason": "",
                       "dup_group": "", "duplicate_of": "", "label_conflict": False, "error": "", "ood_score": 0.0,
                       "width": 48, "height": 40})
    for dedup in (True, False):
        summary = {"config": asdict(CleanConfig(dedup=dedup)), "n_images": 1, "kept": 1, "removed": {},
                   "label_conflict_groups": 0, "label_conflicts": [], "threshold_sweep": [],
                   "families": {"groups_of_3_or_more": 0, "images_in_them": 0, "pair_groups": 0}}
        page = htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text())
        assert ("duplicate stage off (--no-dedup)" in page) is not dedup
        assert ("duplicate groups spanning labels" in page and "Label conflicts" in page) is dedup
    # --exact-only: no near-duplicate score, no sweep; its empty table read as no duplicate at any threshold
    for near in (True, False):
        summary["config"] = asdict(CleanConfig(near_dup=near))
        page = htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text())
        assert ("--exact-only: near duplicates not searched, no threshold to sweep" in page) is not near


def test_clean_report_threshold_sweep_says_what_the_mode_does(tmp_path):
    """The sweep's heading said "the images deduplication would remove" (2,815 at 0.98 on Open Clip Art) although
    the default --duplicates link removes nothing. Under link it names the count as the images linked to their
    group's first member (column `linked`); under drop, removed."""
    import html as htmlmod
    from dataclasses import asdict

    from imgcls.clean import CleanConfig
    from imgcls.clean.report import write_clean_report
    df = pd.DataFrame({"root": str(tmp_path), "path": ["a/0.png", "a/1.png"], "label": "a", "keep": True,
                       "reason": "", "dup_group": "", "duplicate_of": "", "label_conflict": False, "error": "",
                       "ood_score": 0.0})
    sweep = [{"threshold": 0.98, "removed": 2815, "remaining": 4888}, {"threshold": 0.9, "removed": 3000,
                                                                          "remaining": 4703}]
    for mode in ("link", "drop"):
        summary = {"config": asdict(CleanConfig(duplicates=mode)), "n_images": 2, "kept": 2, "removed": {},
                   "label_conflict_groups": 0, "label_conflicts": [],
                   "families": {"groups_of_3_or_more": 0, "images_in_them": 0, "pair_groups": 0},
                   "threshold_sweep": sweep}
        page = " ".join(htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text()).split())
        if mode == "link":
            assert ("Threshold sweep (--duplicates link): the images that would be linked to "
                    "their duplicate group's first member at each threshold") in page
            assert "<th>threshold</th><th>linked</th><th>distinct images (one per group)</th>" in page
            assert "would remove" not in page
        else:
            assert "Threshold sweep (--duplicates drop): the images deduplication would remove" in page
            assert "<th>threshold</th><th>removed</th><th>remaining</th>" in page
        assert "<td class=\"num\">2815</td>" in page


def test_the_link_sweep_heading_says_what_conflicts_removes(tmp_path):
    """Under --duplicates link the sweep's heading said "nothing is removed ... every image kept", while the default
    --conflicts majority-knn removes a group's minority label even so: 320 Open Clip Art images (openclipart_dirty)
    linked 19 (linked_kept) and removed 1 label_conflict, and the sweep's 'linked' column read 20 at the cut. The
    heading says the sweep counts those too, and that --conflicts removes them; under --conflicts all, which keeps
    every label, every image is kept."""
    import html as htmlmod
    from dataclasses import asdict

    from imgcls.clean import CleanConfig
    from imgcls.clean.report import write_clean_report
    df = pd.DataFrame({"root": str(tmp_path), "path": ["a/0.png", "a/1.png"], "label": "a", "keep": True,
                       "reason": "", "dup_group": "", "duplicate_of": "", "label_conflict": False, "error": "",
                       "ood_score": 0.0})
    sweep = [{"threshold": 0.98, "removed": 20, "remaining": 300}]
    for conflicts, said in (("majority-knn", "every image kept but those --conflicts majority-knn removes from a "
                                             "group spanning labels, counted here too"),
                            ("all", "every image kept)")):
        summary = {"config": asdict(CleanConfig(duplicates="link", conflicts=conflicts)), "n_images": 2, "kept": 2,
                   "removed": {}, "label_conflict_groups": 0, "label_conflicts": [],
                   "families": {"groups_of_3_or_more": 0, "images_in_them": 0, "pair_groups": 0},
                   "threshold_sweep": sweep}
        page = " ".join(htmlmod.unescape(write_clean_report(tmp_path / "r.html", df, summary).read_text()).split())
        assert said in page and "nothing is removed" not in page, conflicts


def test_fallback_val_split_says_a_drawn_share_far_from_the_one_asked(capsys):
    """12 people of 7 images over 6 classes: a 0.2 share of a class's 14 images is 3, and a person of 7 goes whole,
    so the draw validates on half the images; said, with the count (train's earlier line names only 0.2)."""
    from imgcls.train.data import assign_split
    groups = [f"p{g}" for g in range(12) for _ in range(7)]
    labels = [f"c{g // 2}" for g in range(12) for _ in range(7)]
    train, val = assign_split(_df(groups, labels, "dup_group"), None, 0.2, 0)
    out = capsys.readouterr()
    assert val.sum() == 42
    assert "draw validates on 42 of 84 images (0.50)" in " ".join((out.out + out.err).split())
    df = _df([""] * 40, ["ab"[k % 3 == 0] for k in range(40)], "dup_group")
    assign_split(df, None, 0.25, 3)                       # a plain stratified draw hits its share: nothing said
    out = capsys.readouterr()
    assert "draw validates" not in out.out + out.err


def test_fallback_val_split_share_is_of_the_originals_not_the_oversampled_copies(capsys):
    """preprocess --oversample output trained with --val-split 0.2: the draw validates on 0.2 of the originals
    (copies never validate, they train beside their sources), yet the share said was over the originals and copies
    together, 'validates on 8 of 77 images (0.10)', a false alarm on every oversampled set. The share is the
    originals'."""
    from imgcls.train.data import assign_split
    df = _df([""] * 40, ["ab"[k % 2] for k in range(40)], "dup_group")
    copies = pd.DataFrame({"root": "r", "path": [f"b/{k:03d}__os1.png" for k in range(48)], "label": "b",
                           "sha256": [f"c{k}" for k in range(48)], "error": "", "dup_group": "",
                           "augmented_from": [f"b/{2 * (k % 20) + 1:03d}.png" for k in range(48)]})
    df = pd.concat([df.assign(augmented_from=""), copies], ignore_index=True)
    train, val = assign_split(df, None, 0.2, 0)
    out = capsys.readouterr()
    assert val.sum() == 8 and train[40:].any()                 # 0.2 of the 40 originals; copies train
    assert "draw validates" not in out.out + out.err, out.err
