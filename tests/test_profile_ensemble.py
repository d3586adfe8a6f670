"""ensemble --combine profile: per-attribute runs (train --target) and profile runs -> the 18 profile classes by the
product of the attributes' probabilities; predict writes the mask competition's submission from it."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imgcls.ensemble import build_ensemble, combine_profile, load_spec
from imgcls.errors import UserError
from imgcls.model_meta import ModelMeta
from imgcls.profiles import ProfileScheme

from conftest import make_image, make_tiny_run


def _meta(target: str, classes, decode: str = "single") -> ModelMeta:
    if decode == "profile":
        heads = [{"name": "mask", "classes": ["0", "1", "2"]}, {"name": "gender", "classes": ["0", "1"]},
                 {"name": "age_band", "classes": ["0", "1", "2"]}]
    else:
        heads = [{"name": "label", "classes": list(classes)}]
    return ModelMeta.from_dict({"model": "test_resnet", "classes": list(classes), "heads": heads, "decode": decode,
                                "img_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3, "target": target})


MASK, GENDER, AGE = _meta("mask", "012"), _meta("gender", "01"), _meta("age_band", "012")


def test_constructed_case_decodes_to_the_right_profile_id():
    pm = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])      # row 0: not worn (2); row 1: wear (0)
    pg = np.array([[0.8, 0.2], [0.45, 0.55]])              # male (0); female (1)
    pb = np.array([[0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])      # >= 60 (2); 30-59 (1)
    p = combine_profile([pm, pg, pb], [MASK, GENDER, AGE])
    scheme = ProfileScheme()
    assert p.shape == (2, 18) and np.allclose(p.sum(1), 1)
    assert p.argmax(1).tolist() == [scheme.label(2, 0, 2), scheme.label(0, 1, 1)] == [14, 4]
    assert p[0, 14] == pytest.approx(0.7 * 0.8 * 0.6)
    # the member order does not matter, and a profile run adds its marginals to every attribute
    assert np.allclose(combine_profile([pb, pm, pg], [AGE, MASK, GENDER]), p)
    prof = np.zeros((2, 18))
    prof[:, scheme.label(1, 1, 0)] = 1.0                   # a profile run sure of incorrect / female / < 30
    q = combine_profile([pm, pg, pb, prof], [MASK, GENDER, AGE, _meta("label", map(str, range(18)), "profile")])
    wm = (pm + np.eye(3)[[1, 1]]) / 2                        # equal weights: the mean per attribute
    assert q[0, 14] == pytest.approx(wm[0, 2] * (pg[0, 0] + 0) / 2 * (pb[0, 2] + 0) / 2)
    # a single-attribute run that saw only some values (age bands 0 and 2): its classes are values, not positions
    q = combine_profile([pm, pg, np.array([[0.3, 0.7], [0.9, 0.1]])], [MASK, GENDER, _meta("age_band", "02")])
    assert q.argmax(1).tolist() == [scheme.label(2, 0, 2), scheme.label(0, 1, 0)]


def test_members_that_do_not_make_a_profile_are_one_line():
    with pytest.raises(UserError, match=r"no member predicts age_band; add a run trained with `imgcls train "
                                        r"--target age_band`"):
        combine_profile([np.ones((1, 3)) / 3, np.ones((1, 2)) / 2], [MASK, GENDER])
    with pytest.raises(UserError, match="this run predicts 'label' with classes a, b"):
        combine_profile([np.ones((1, 2)) / 2], [_meta("label", "ab")], names=["artists"])
    with pytest.raises(UserError, match=r"with classes a, b, c, d, e, f and 2 more$"):   # cut as every list is
        combine_profile([np.ones((1, 8)) / 8], [_meta("label", "abcdefgh")], names=["artists"])
    # a run of the raw age (train --target age): the message names the band's run, the attribute it takes
    with pytest.raises(UserError, match=r"this run predicts 'age' with classes 20, 35, 61; for the age band, a run "
                                        r"of `imgcls train --target age_band`"):
        combine_profile([np.ones((1, 3)) / 3], [_meta("age", ["20", "35", "61"])], names=["ages"])


def _runs(tmp_path, rows):
    """Three attribute runs on the same validation rows; their labels are each attribute's value."""
    truth = {"mask": [2, 0, 1, 0], "gender": [0, 1, 1, 0], "age_band": [2, 1, 0, 0]}
    runs = []
    for k, (target, classes) in enumerate((("mask", "012"), ("gender", "01"), ("age_band", "012"))):
        vr = [(r, p, str(v)) for (r, p), v in zip(rows, truth[target])]
        runs.append(make_tiny_run(tmp_path / "runs" / target, classes=tuple(classes), target=target, seed=k,
                                  val_rows=vr, val_quality=1.0))
    return runs, ProfileScheme().label(np.array(truth["mask"]), np.array(truth["gender"]), np.array(truth["age_band"]))


def test_ensemble_scores_on_the_profile_truth_and_predict_writes_the_mask_submission(tmp_path):
    from typer.testing import CliRunner

    from imgcls.cli import app
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, y = _runs(tmp_path, rows)
    out = tmp_path / "ens"
    r = CliRunner().invoke(app, ["ensemble", *map(str, runs), "--combine", "profile", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    spec = load_spec(out)
    assert spec.combine == "profile" and spec.classes == [str(i) for i in range(18)]
    oof = pd.read_csv(out / "oof_predictions.csv")
    assert oof["label"].tolist() == y.tolist()          # the true class from the members' attribute labels
    assert oof["pred"].tolist() == y.tolist()           # members always right (val_quality 1) -> ensemble right
    # macro-F1 over every one of the 18 classes of the task (imgcls.metrics): 4 classes present, each F1 1
    assert spec.scores["ensemble_macro_f1"] == pytest.approx(4 / 18) and spec.scores["common_val_images"] == 4
    from imgcls.runs import read_run                     # the leaderboard names how it combines
    ens = read_run(out)
    assert ens.kind == "ensemble" and ens.model.startswith("profile: ") and ens.config["combine"] == "profile"
    # predict: the mask competition's submission, class ids 0..17, probabilities = the product
    ev = tmp_path / "eval"
    ids = ["f3.jpg", "0a.jpg", "9c.jpg"]
    for i, n in enumerate(ids):
        make_image(ev / "images" / n, size=(30, 40), seed=i, kind="noise")
    pd.DataFrame({"ImageID": ids, "ans": 0}).to_csv(ev / "info.csv", index=False)
    pred = tmp_path / "pred"
    r = CliRunner().invoke(app, ["predict", str(out), "--data", str(ev / "info.csv"), "--out", str(pred),
                                 "--format", "mask", "--workers", "0", "--quiet"])
    assert r.exit_code == 0, r.output
    sub = pd.read_csv(pred / "submission.csv")
    assert list(sub.columns) == ["ImageID", "ans"] and sub["ImageID"].tolist() == ids
    probs = pd.read_parquet(pred / "probs.parquet")
    p = probs[[f"p_{i}" for i in range(18)]].to_numpy()
    assert np.allclose(p.sum(1), 1, atol=1e-4) and sub["ans"].tolist() == p.argmax(1).tolist()
    # each member predicted alone gives the factors
    single = []
    for run in runs:
        d = tmp_path / f"pred_{run.name}"
        r = CliRunner().invoke(app, ["predict", str(run), "--data", str(ev / "info.csv"), "--out", str(d),
                                     "--workers", "0", "--quiet"])
        assert r.exit_code == 0, r.output
        single.append(pd.read_parquet(d / "probs.parquet").filter(like="p_").to_numpy())
    m, g, b = ProfileScheme().parts(np.arange(18))
    assert np.allclose(p, single[0][:, m] * single[1][:, g] * single[2][:, b], atol=1e-4)
    assert json.loads((pred / "predict.json").read_text())["combine"] == "profile"
    # the report's submission-vs-training distribution: no member counts the 18 classes (the mask member's
    # classes 0-2 were read as profile classes 0-2 before); a member predicting alone has its own counts
    html = (pred / "report.html").read_text()
    assert "no member run holds training counts over these classes" in html and "training share" not in html
    assert "training share" in (tmp_path / f"pred_{runs[0].name}" / "report.html").read_text()


def test_a_profile_ensemble_with_no_plots_draws_no_png(tmp_path):
    """--combine profile wrote its confusion PNGs whatever was asked: plots=False (--no-plots) leaves them out
    there too, its report saying so, its scored rows written as without it."""
    runs, y = _runs(tmp_path, [("/d", f"img{k}.jpg") for k in range(4)])
    out = tmp_path / "ens"
    build_ensemble(runs, combine="profile", out=out, plots=False)
    assert not list(out.glob("*.png"))
    page = (out / "report.html").read_text()
    assert "<img" not in page and "figures not drawn (--no-plots)" in page
    assert pd.read_csv(out / "oof_predictions.csv")["pred"].tolist() == y.tolist()


def test_hard_or_auto_weights_are_refused(tmp_path):
    with pytest.raises(UserError, match="--combine profile multiplies"):
        build_ensemble([tmp_path], method="hard", combine="profile")
    with pytest.raises(UserError, match="--combine profile multiplies"):
        build_ensemble([tmp_path], method="weighted", weights="auto", combine="profile")


def test_weighted_without_weights_is_auto_and_refused(tmp_path):
    """`ensemble --combine profile --method weighted` (no --weights: auto, fitted, as for --combine vote) built
    equal weights labelled 'weighted' and replaced the soft ensemble of the same name; auto is refused, as typed."""
    for weights in (None, ""):
        with pytest.raises(UserError, match="--combine profile multiplies"):
            build_ensemble([tmp_path], method="weighted", weights=weights, combine="profile")


def test_weights_that_would_change_nothing_are_refused_and_shares_are_said(tmp_path, capsys):
    """`--combine profile --weights 1,2,3` over one run per attribute showed the weights in its table and changed
    nothing (weights act between the members of one attribute); refused. With two age runs the weights act, and
    each member's share within its attribute is said (the table's overall weight is not it)."""
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, _ = _runs(tmp_path, rows)
    with pytest.raises(UserError, match="each attribute comes from one member, so they would change nothing; drop "
                                        "--weights"):
        build_ensemble(runs, weights="1,2,3", combine="profile", out=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    vr = [(r, p, str(v)) for (r, p), v in zip(rows, [2, 1, 0, 0])]
    age2 = make_tiny_run(tmp_path / "runs" / "age2", classes=("0", "1", "2"), target="age_band", seed=9, val_rows=vr,
                         val_quality=0.5)
    capsys.readouterr()
    spec = build_ensemble([*runs, age2], weights="1,1,3,1", combine="profile", out=tmp_path / "w2")
    assert [m.weight for m in spec.members] == pytest.approx([1 / 6, 1 / 6, 1 / 2, 1 / 6])
    said = " ".join(capsys.readouterr().err.split())
    assert "weights within each attribute: age_band: age_band 0.75, age2 0.25" in said, said


def test_age_members_of_other_bands_are_refused_before_anything_is_read(tmp_path, capsys):
    """A run trained on split --age-bands 40 labels (age band 0: < 40) and one on 30,60 labels combined without a
    word (the two-band run's classes 0, 1 read as bands <30, 30-59); so did 30,60 and 20,50. train records the edges
    (ModelMeta.age_bands); members that predict the age band with other edges are one line naming them."""
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, _ = _runs(tmp_path, rows)               # no record: older checkpoints
    vr = [(r, p, str(v)) for (r, p), v in zip(rows, [1, 1, 0, 0])]
    two = make_tiny_run(tmp_path / "runs" / "age40", classes=("0", "1"), target="age_band", val_rows=vr,
                        age_bands=[40])
    other = make_tiny_run(tmp_path / "runs" / "age2050", classes=("0", "1", "2"), target="age_band", val_rows=vr,
                          age_bands=[20, 50])
    same = make_tiny_run(tmp_path / "runs" / "age3060", classes=("0", "1", "2"), target="age_band", val_rows=vr,
                         age_bands=[30, 60])
    for extra, said in ((two, "age40: 40; age2050: 20,50)"), (same, "age3060: 30,60; age2050: 20,50)")):
        with pytest.raises(UserError, match="the members that predict the age band were trained with different "
                                            "age bands") as e:
            build_ensemble([runs[0], runs[1], extra, other], combine="profile", out=tmp_path / "e")
        assert said in str(e.value) and "split --age-bands" in str(e.value)
        assert not (tmp_path / "e").exists()
    # an older checkpoint (no record) beside a recorded one: not checked, and said so (a guess would refuse
    # runs that agree)
    capsys.readouterr()
    spec = build_ensemble([*runs, other], combine="profile", out=tmp_path / "old")
    said = " ".join(capsys.readouterr().err.split())
    assert "the age band edges of age_band are not recorded" in said and "(age2050: 20,50)" in said, said
    assert len(spec.classes) == 18
    spec = build_ensemble([*runs, same], combine="profile", out=tmp_path / "ok")      # 30,60 = the default
    assert len(spec.classes) == 18
    # the age band from the 40 run alone: its two bands make the scheme (12 classes)
    spec = build_ensemble([runs[0], runs[1], two], combine="profile", out=tmp_path / "two")
    assert len(spec.classes) == 12


def test_the_weights_shown_are_each_members_share_within_its_attribute(tmp_path, capsys):
    """The table showed 1/3 per member of mask / gender / age runs, and 1.000 for the ensemble: no member has such
    a weight in a product of the attributes (each alone gives its attribute: all of it). The column is now each
    member's share within the attribute(s) it gives, and says so."""
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, _ = _runs(tmp_path, rows)
    capsys.readouterr()
    build_ensemble(runs, combine="profile", out=tmp_path / "e")
    said = " ".join("".join(capsys.readouterr()).split())
    w = pd.read_csv(tmp_path / "e" / "scores.csv")["weight"].tolist()
    assert w[:3] == [1.0, 1.0, 1.0] and np.isnan(w[3]), w
    assert "0.333" not in said and "weight: a member's share within the attribute(s) it predicts" in said, said
    assert "share within the attribute(s)" in (tmp_path / "e" / "report.html").read_text()
    vr = [(r, p, str(v)) for (r, p), v in zip(rows, [2, 1, 0, 0])]
    age2 = make_tiny_run(tmp_path / "runs" / "age2", classes=("0", "1", "2"), target="age_band", seed=9, val_rows=vr)
    prof = make_tiny_run(tmp_path / "runs" / "prof", multi=True, seed=3,
                         val_rows=[(r, p, str(v)) for (r, p), v in zip(rows, [14, 4, 9, 0])])
    capsys.readouterr()
    build_ensemble([*runs, age2, prof], weights="1,1,1,1,2", combine="profile", out=tmp_path / "w")
    said = capsys.readouterr().out
    scores = pd.read_csv(tmp_path / "w" / "scores.csv", keep_default_na=False, na_values=[""])
    w = scores["weight"].tolist()
    # mask: mask 1/3, prof 2/3; gender alike; age_band: age_band, age2 1/4 each, prof 1/2 (prof: shares differ)
    assert w[:2] == pytest.approx([1 / 3, 1 / 3]) and w[2:4] == pytest.approx([0.25, 0.25]), w
    assert np.isnan(w[4]) and np.isnan(w[5]) and scores["weight"].dtype == float
    # the terminal's table left prof's weight cell blank (with a caption saying so): it now shows the shares as
    # report.html does, and scores.csv says them in a text column beside the numeric weight
    prof_row = next(line for line in said.splitlines() if "prof (profile)" in line)
    assert "mask 0.67, gender 0.67, age_band 0.50" in prof_row, said
    assert "blank where" not in " ".join(said.split()), said
    assert scores["shares"].fillna("").tolist() == ["0.33", "0.33", "0.25", "0.25",
                                                    "mask 0.67, gender 0.67, age_band 0.50", ""], scores
    # report.html left prof's weight cell blank (its shares differ by attribute) while the terminal said them: it
    # now shows each member's shares as the terminal's line does (share_text)
    html = (tmp_path / "w" / "report.html").read_text()
    assert "mask 0.67, gender 0.67, age_band 0.50" in html, html
    assert html.count(">0.33<") == 2 and html.count(">0.25<") == 2, html


def test_predict_shows_each_members_share_within_its_attribute_as_the_ensemble_does(tmp_path, capsys):
    """predict on a `--combine profile --weights 1,1,3,1` ensemble said each member's overall weight (w=0.17 for the
    mask run, which alone gives the mask: all of it) on screen and in report.html, while `imgcls ensemble` showed
    the shares within each attribute; both now show the same shares (ensemble.profile.member_shares)."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, _ = _runs(tmp_path, rows)
    age2 = make_tiny_run(tmp_path / "runs" / "age2", classes=("0", "1", "2"), target="age_band", seed=9,
                         val_rows=[(r, p, str(v)) for (r, p), v in zip(rows, [2, 1, 0, 0])])
    ens = tmp_path / "ens"
    build_ensemble([*runs, age2], weights="1,1,3,1", combine="profile", out=ens)
    ev = tmp_path / "eval"
    for i in range(2):
        make_image(ev / f"t{i}.jpg", size=(30, 40), seed=i, kind="noise")
    r = CliRunner().invoke(app, ["predict", str(ens), "--data", str(ev), "--out", str(tmp_path / "pred"),
                                 "--format", "mask", "--workers", "0"])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert "w=0.17" not in said and "w=0.50" not in said, said
    assert "mask x1 (w=1.00)" in said and "age_band x1 (w=0.75)" in said and "age2 x1 (w=0.25)" in said, said
    html = (tmp_path / "pred" / "report.html").read_text()
    assert "share within" in html and "0.167" not in html and "0.75" in html, html
    got = json.loads((tmp_path / "pred" / "predict.json").read_text())["members"]
    assert [m["share"] for m in got] == [{"mask": 1.0}, {"gender": 1.0}, {"age_band": 0.75}, {"age_band": 0.25}]


def test_runs_shows_each_members_share_within_its_attribute_as_the_ensemble_does(tmp_path):
    """`imgcls runs` listed a mask / gender / age_band profile ensemble as `weights mask=0.333 gender=0.333
    age_band=0.333` (spec.yaml's weight over all members), where `imgcls ensemble` and `predict` show each member's
    share within its attribute: 1.00 each, all of its attribute (and 0.250 each for four members where the ensemble
    said 0.50). It now shows the ensemble's shares."""
    from imgcls.runs import find_runs
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, _ = _runs(tmp_path, rows)
    prof = make_tiny_run(tmp_path / "runs" / "prof", multi=True, seed=3,
                         val_rows=[(r, p, str(v)) for (r, p), v in zip(rows, [14, 4, 9, 0])])
    build_ensemble(runs, combine="profile", out=tmp_path / "ensembles" / "three")
    build_ensemble([*runs, prof], combine="profile", out=tmp_path / "ensembles" / "four")
    got = {r.name: r for r in find_runs(tmp_path) if r.kind == "ensemble"}
    three, four = (next(r for n, r in got.items() if n.endswith(k)) for k in ("three", "four"))
    assert "0.333" not in three.changed and "mask=1.00 gender=1.00 age_band=1.00" in three.changed, three.changed
    assert "0.250" not in four.changed and "mask=0.50 gender=0.50 age_band=0.50 prof=0.50" in four.changed, \
        four.changed
    assert three.config["members"] == {"mask": "1.00", "gender": "1.00", "age_band": "1.00"}


def test_a_vote_over_runs_of_different_attributes_is_refused_naming_combine_profile(tmp_path):
    """`imgcls ensemble RUN_mask RUN_age_band` (no --combine profile) averaged the mask probabilities with the age
    band's, both classes 0, 1, 2, as one task: exit 0, an ensemble scored and predicting neither; with the gender
    run it said `classes differ: 2; ensemble runs trained on the same labels`. Runs predicting different columns
    are one line naming both and --combine profile."""
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    (mask, gender, age), _ = _runs(tmp_path, rows)
    for pair in ((mask, age), (mask, gender)):
        with pytest.raises(UserError, match=r"members predict different columns: .*predicts '(age_band|gender)' "
                                            r"and mask .* 'mask' \(train --target\); .*--combine profile"):
            build_ensemble(list(pair), out=tmp_path / "e")
    assert not (tmp_path / "e").exists()
    age2 = make_tiny_run(tmp_path / "runs" / "age2", classes=("0", "1", "2"), target="age_band", seed=9,
                         val_rows=[(r, p, str(v)) for (r, p), v in zip(rows, [2, 1, 0, 0])])
    assert build_ensemble([age, age2], out=tmp_path / "ages").classes == ["0", "1", "2"]     # one target: a vote


def test_each_member_is_scored_on_the_rows_the_profile_ensemble_is_scored_on(tmp_path):
    """The profile ensemble's table left every member's 'common val' cell blank: a k-fold member's own score (its
    out-of-fold rows, 168 on the mask walk) stood beside the ensemble's over 42 common rows, not comparable. Each
    member now has its own target's macro-F1 over the common rows, as a vote's members have."""
    rows = [("/d", f"img{k}.jpg") for k in range(4)]
    runs, _ = _runs(tmp_path, rows)
    wide = rows + [("/d", f"img{k}.jpg") for k in range(4, 8)]
    age2 = make_tiny_run(tmp_path / "runs" / "age2", classes=("0", "1", "2"), target="age_band", seed=9,
                         val_rows=[(r, p, str(v)) for (r, p), v in zip(wide, [2, 1, 0, 0, 1, 1, 2, 0])])
    build_ensemble([*runs, age2], combine="profile", out=tmp_path / "e")
    t = pd.read_csv(tmp_path / "e" / "scores.csv")
    members = t.iloc[:4]
    assert members["common_macro_f1"].notna().all(), t
    assert members["val_images"].tolist() == [4, 4, 4, 8]
    # the three attribute runs validated on exactly the common rows: the two columns agree (val_quality 1.0: right)
    assert members["common_macro_f1"].iloc[:3].tolist() == pytest.approx(members["val_macro_f1"].iloc[:3].tolist())
    recorded = load_spec(tmp_path / "e").scores["members"]        # spec.yaml keeps them, as a vote's does
    assert all("common_macro_f1" in v for v in recorded.values()), recorded


def _leak_refusal(ens, raw, *args) -> str:
    """predict ENS --data RAW --eval (the members' own training images): refused; its line, on one line."""
    from typer.testing import CliRunner

    from imgcls.cli import app
    r = CliRunner().invoke(app, ["predict", str(ens), "--data", str(raw), "--eval", *args, "--out",
                                 str(ens.parent / "p"), "--workers", "0", "--quiet"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "a leaked score" in said and "Traceback" not in r.output, r.output
    return said


def test_the_leak_refusal_of_an_ensemble_trains_every_member_again_and_builds_the_ensemble_again(tmp_path):
    """predict ENS --data DATA --eval --format mask on a --combine profile ensemble of train --target mask / gender /
    age_band runs, DATA their own training images: refused (right), but its fix split again and trained the one
    member the check met (t_mask) again, then scored that run alone: the mask's classes, no score of the ensemble. A
    soft vote of two runs was told the same. Every member is trained again on the split and the ensemble built again
    of them as it was (--combine profile, its typed --weights), then --eval scores that ensemble; followed in part,
    the steps left are said; followed whole, the last one."""
    import yaml

    from conftest import make_image_folder
    from imgcls import manifest as mf
    raw = make_image_folder(tmp_path / "raw", {"0": 4, "4": 4, "14": 4}, size=(32, 32))
    df = mf.load(raw, scan=True, announce=False)
    parts = dict(zip(("mask", "gender", "age_band"), ProfileScheme().parts(df["label"].astype(int).to_numpy())))

    def run(name, target, classes, values, src=raw, seed=0):
        val = [(str(raw), p, str(v)) for k, (p, v) in enumerate(zip(df["path"], values)) if k % 4 == 0]
        r = make_tiny_run(tmp_path / "runs" / name, classes=tuple(classes), target=target, val_rows=val, seed=seed)
        (r / "config.yaml").write_text(yaml.safe_dump({"model": "test_efficientnet", "img_size": 32, "src": str(src),
                                                       "target": target}))
        return r
    members = [("t_mask", "mask", "012"), ("t_gender", "gender", "01"), ("t_age_band", "age_band", "012"),
               ("t_age2", "age_band", "012")]
    runs = [run(n, t, c, parts[t], seed=i) for i, (n, t, c) in enumerate(members)]
    ens = tmp_path / "ens"
    build_ensemble(runs, combine="profile", weights="1,1,3,1", out=ens)
    said = _leak_refusal(ens, raw, "--format", "mask")
    table, again = tmp_path / "heldout.csv", [r.parent / f"{r.name}_heldout" for r in runs]
    trains = [f"imgcls train {table} --config {r / 'config.yaml'} --out {r.parent} --name {a.name}"
              for r, a in zip(runs, again)]
    build = (f"imgcls ensemble {' '.join(map(str, again))} --combine profile --method weighted --weights 1,1,3,1 "
             f"--out {tmp_path / 'ens_heldout'}")
    score = f"imgcls predict {tmp_path / 'ens_heldout'} --data {table} --eval --eval-split test"
    assert (f"or --eval on a labelled test set no member trained on: a split made after training has test rows its "
            f"members trained on, so split first, train every member again on it and build the ensemble again of "
            f"them: imgcls split {raw} --test 0.2 --out {table}, {', '.join(trains)}, {build}, then {score}") in said, \
        said
    # followed in part (the split, one member trained on it): the steps left
    table.write_text("path,label\n")
    run("t_mask_heldout", "mask", "012", parts["mask"], src=table)
    said = _leak_refusal(ens, raw, "--format", "mask")
    assert (f": {again[0]} was trained on {table}, a split made first: {', '.join(trains[1:])}, {build}, then "
            f"{score}") in said, said
    # followed whole: the ensemble's score is the step left
    made = [again[0]] + [run(a.name, t, c, parts[t], src=table, seed=i)
                         for i, (a, (_, t, c)) in enumerate(zip(again[1:], members[1:]))]
    build_ensemble(made, combine="profile", weights="1,1,3,1", out=tmp_path / "ens_heldout")
    said = _leak_refusal(ens, raw, "--format", "mask")
    assert f": {tmp_path / 'ens_heldout'} was built of runs trained on {table}, a split made first: {score}" in said, \
        said
    assert "imgcls train" not in said and "imgcls ensemble" not in said, said
    # a soft vote of two runs: the same, its ensemble built again as a soft vote (no options)
    votes = [run(n, "label", ("0", "14", "4"), df["label"]) for n in ("a1", "a2")]
    vote = tmp_path / "vote"
    build_ensemble(votes, out=vote)
    said = _leak_refusal(vote, raw)
    # heldout.csv is the profile members' table now: another's, never split over (the next free names)
    table2, again2 = tmp_path / "heldout2.csv", [r.parent / f"{r.name}_heldout2" for r in votes]
    trains = [f"imgcls train {table2} --config {r / 'config.yaml'} --out {r.parent} --name {a.name}"
              for r, a in zip(votes, again2)]
    assert (f"{', '.join(trains)}, imgcls ensemble {' '.join(map(str, again2))} --out {tmp_path / 'vote_heldout2'}, "
            f"then imgcls predict {tmp_path / 'vote_heldout2'} --data {table2} --eval --eval-split test") in said, said


def _on_folder(run, raw):
    """A run's config.yaml and each of its folds' made to name the image folder raw as its training data."""
    import yaml
    for c in [run / "config.yaml", *run.glob("fold_*/config.yaml")]:
        c.write_text(yaml.safe_dump(dict(yaml.safe_load(c.read_text()), src=str(raw))))
    return run


def _kfold_on_folder(tmp_path, raw, df, name, k, seed=0):
    """A k-fold set trained on the image folder raw (no fold ids there): fold g validated on every k-th image from
    the g-th; the set's out-of-fold file all of them."""
    kf = _on_folder(make_tiny_run(tmp_path / "runs" / name, classes=("a", "b"), folds=k, seed=seed), raw)
    paths, parts = list(df["path"]), []
    for g in range(k):
        rows = paths[g::k]
        parts.append(pd.DataFrame({"path": rows, "root": str(raw), "label": [p.split("/")[0] for p in rows],
                                   "fold": str(g), "pred": "a", "p_a": 0.6, "p_b": 0.4}))
        parts[-1].to_csv(kf / f"fold_{g}" / "val_predictions.csv", index=False)
    pd.concat(parts).to_csv(kf / "val_predictions.csv", index=False)
    return kf


def test_the_leak_refusal_of_a_k_fold_sets_folds_trains_that_set_again_with_its_fold_count(tmp_path):
    """An ensemble of the folds of one k-fold set (kf/fold_0, kf/fold_1) on an image folder: its leak refusal trained
    the one run twice (`--name kf_heldout` twice) and built an ensemble of that run given twice (refused when
    followed), after a split of `--folds 1` (the folds the check met, the folder having no fold ids): train's
    `--folds all` on it was refused. The set is the ensemble of its folds: trained again once, on a split of its 2
    folds, and predicted. Folds of one set beside another run are one run built again, their weights summed (a
    soft vote's typed then)."""
    from conftest import make_image_folder
    from imgcls import manifest as mf
    raw = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(32, 32))
    df = mf.load(raw, scan=True, announce=False)
    kf = _kfold_on_folder(tmp_path, raw, df, "kf", 2)
    runs, table = tmp_path / "runs", tmp_path / "heldout.csv"
    train = (f"imgcls split {raw} --folds 2 --test 0.2 --out {table}, imgcls train {table} --config "
             f"{kf / 'config.yaml'} --out {runs} --name kf_heldout, then imgcls predict {runs / 'kf_heldout'} "
             f"--data {table} --eval --eval-split test")
    build_ensemble([kf / "fold_0", kf / "fold_1"], out=tmp_path / "ens")
    said = _leak_refusal(tmp_path / "ens", raw)
    assert f"no fold trained on: a split made after training has test rows it trained on, so split first and " \
           f"train again: {train}" in said, said
    assert said.count("imgcls train") == 1 and "imgcls ensemble" not in said, said
    # the folds of kf beside a run A: kf and A trained again, the ensemble of the two built again (1+1 : 3)
    val = [(str(raw), p, p.split("/")[0]) for k, p in enumerate(df["path"]) if k % 4 == 0]
    a = _on_folder(make_tiny_run(runs / "A", classes=("a", "b"), val_rows=val, seed=3), raw)
    build_ensemble([kf / "fold_0", kf / "fold_1", a], weights="1,1,3", out=tmp_path / "ens3")
    said = _leak_refusal(tmp_path / "ens3", raw)
    assert (f"imgcls train {table} --config {kf / 'config.yaml'} --out {runs} --name kf_heldout, imgcls train {table} "
            f"--config {a / 'config.yaml'} --out {runs} --name A_heldout, imgcls ensemble {runs / 'kf_heldout'} "
            f"{runs / 'A_heldout'} --method weighted --weights 1,1.5 --out {tmp_path / 'ens3_heldout'}") in said, said
    assert f"imgcls split {raw} --folds 2 --test 0.2" in said, said
    build_ensemble([kf / "fold_0", kf / "fold_1", a], out=tmp_path / "soft3")
    said = _leak_refusal(tmp_path / "soft3", raw)
    assert (f"imgcls ensemble {runs / 'kf_heldout'} {runs / 'A_heldout'} --method weighted --weights 2,1 "
            f"--out {tmp_path / 'soft3_heldout'}") in said, said
    # a hard vote: the set's 2 summed votes would outvote A's every time (A broke the folds' ties): weighted, 2:1
    build_ensemble([kf / "fold_0", kf / "fold_1", a], method="hard", weights="1,1,1", out=tmp_path / "hard3")
    said = _leak_refusal(tmp_path / "hard3", raw)
    assert (f"imgcls ensemble {runs / 'kf_heldout'} {runs / 'A_heldout'} --method weighted --weights 2,1 "
            f"--out {tmp_path / 'hard3_heldout'}") in said, said


def test_the_leak_refusals_split_has_the_folds_of_every_k_fold_member(tmp_path):
    """An ensemble of a single run A and a k-fold set B (config `folds: all`), the leak check meeting A first: the
    split its refusal printed had no --folds, so B trained again on it was refused (--folds needs a fold column).
    The split has the folds of every k-fold member; members of different fold counts are said, each trained again
    with the most. A fold of a set, the data holding no fold ids: `--folds 1` (the folds the check met), now the
    set's planned folds."""
    from conftest import make_image_folder
    from imgcls import manifest as mf
    raw = make_image_folder(tmp_path / "raw", {"a": 4, "b": 4}, size=(32, 32))
    df = mf.load(raw, scan=True, announce=False)
    val = [(str(raw), p, p.split("/")[0]) for k, p in enumerate(df["path"]) if k % 4 == 0]
    a = _on_folder(make_tiny_run(tmp_path / "runs" / "A", classes=("a", "b"), val_rows=val), raw)
    b = _on_folder(make_tiny_run(tmp_path / "runs" / "B", classes=("a", "b"), folds=2, val_rows=val, seed=1), raw)
    build_ensemble([a, b], out=tmp_path / "ens")
    said = _leak_refusal(tmp_path / "ens", raw)
    assert f"the run {a}: the data it trained on" in said, said           # the check met A
    assert f"imgcls split {raw} --folds 2 --test 0.2 --out {tmp_path / 'heldout.csv'}, " in said, said
    assert "fold counts" not in said, said
    b2, c3 = _kfold_on_folder(tmp_path, raw, df, "B2", 2), _kfold_on_folder(tmp_path, raw, df, "C3", 3, seed=2)
    build_ensemble([b2, c3], out=tmp_path / "ens2")
    said = _leak_refusal(tmp_path / "ens2", raw)
    assert ("build the ensemble again of them (its k-fold members had different fold counts, B2 2, C3 3: a split has "
            f"one, so each trains again with 3 folds): imgcls split {raw} --folds 3 --test 0.2") in said, said
    # a fold of a set on that folder (no fold ids there): its split is of the set's 2 folds, not `--folds 1`
    said = _leak_refusal(b2 / "fold_0", raw)
    assert f"imgcls split {raw} --folds 2 --test 0.2 --out {tmp_path / 'heldout.csv'}, imgcls train " in said, said
