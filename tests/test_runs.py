"""imgcls runs: the leaderboard over a constructed outputs/ folder (no training), diff, report, --csv round trip."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from imgcls.cli import app
from imgcls.runs import COLUMNS, diff_runs, find_runs, leaderboard

CLASSES = ["a", "b", "c"]


def fake_run(d, model, preds, epochs=3, seconds=2.0, classes=CLASSES, f1=None, **cfg):
    """A run folder as imgcls train leaves it: config.yaml, metrics.csv (its val_macro_f1 `f1` per epoch, rising
    by default), val_predictions.csv (label / pred) of `classes` (p_<class> columns)."""
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"model": model, "img_size": 32, "epochs": epochs, **cfg}))
    f1 = np.linspace(0.2, 0.6, epochs) if f1 is None else f1
    pd.DataFrame({"epoch": range(1, epochs + 1), "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5,
                  "val_macro_f1": f1, "lr": 1e-3, "epoch_seconds": seconds}).to_csv(d / "metrics.csv", index=False)
    labels, pred = zip(*preds)
    p = np.eye(len(classes))[[list(classes).index(x) for x in pred]] * 0.8 + 0.2 / len(classes)
    df = pd.DataFrame({"path": [f"{i}.png" for i in range(len(preds))], "root": "/nowhere", "label": labels,
                       "fold": "", "pred": pred})
    pd.concat([df, pd.DataFrame(p, columns=[f"p_{c}" for c in classes])], axis=1).to_csv(
        d / "val_predictions.csv", index=False)
    return d


def member(name, weight):
    """A member of a spec.yaml as imgcls ensemble writes it: the run outputs/runs/NAME, relative to the spec's
    folder (outputs/ensembles/ENS), and its checkpoint."""
    return {"name": name, "run": f"../../runs/{name}", "weight": weight, "checkpoints": [f"../../runs/{name}/best.pt"]}


@pytest.fixture
def outputs(tmp_path):
    out = tmp_path / "outputs"
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    fake_run(out / "runs" / "best", "resnet10t", good, epochs=4, seconds=5.0, loss="focal",
             weights_source="package /site-packages/w.pth", name="best", workers=2, src="data/a")
    fake_run(out / "runs" / "mid", "resnet10t", [("a", "a"), ("b", "a"), ("c", "c"), ("a", "a")], seconds=1.0,
             name="mid", workers=2, weights_source=None)
    fake_run(out / "runs" / "low", "tf_efficientnet_lite0", [("a", "b"), ("b", "a"), ("c", "c"), ("a", "a")],
             seconds=3.0)
    kf = out / "runs" / "kf"
    for k in range(2):
        fake_run(kf / f"fold_{k}", "resnet10t", good[:2], epochs=2)
    (kf / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2,
                                                    "folds": "all"}))
    (kf / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))     # train's record: every fold finished
    pd.concat([pd.read_csv(kf / f"fold_{k}" / "val_predictions.csv") for k in range(2)]).to_csv(
        kf / "val_predictions.csv", index=False)
    study = out / "tune" / "s1"
    fake_run(study / "trial_0000", "resnet10t", [("a", "a"), ("b", "b"), ("c", "a"), ("a", "a")], epochs=1,
             lr=0.00013449326615130812)       # a value as Optuna samples it
    (study / "trials.csv").write_text("trial,state,value\n0,complete,0.5\n")
    (out / "runs" / "mlartifacts" / "x" / "artifacts").mkdir(parents=True)     # an MLflow copy is not a run
    fake_run(out / "runs" / "mlartifacts" / "x" / "artifacts" / "copy", "resnet10t", good)
    ens = out / "ensembles" / "e1"
    ens.mkdir(parents=True)
    for name in ("best", "mid"):        # its members' checkpoints, found by their name (never read)
        (out / "runs" / name / "best.pt").write_bytes(b"")
    (ens / "spec.yaml").write_text(yaml.safe_dump({"kind": "imgcls-ensemble", "name": "e1", "method": "soft",
                                                   "classes": CLASSES,
                                                   "members": [member("best", 0.5),
                                                               member("mid", 0.5)]}))
    oof = pd.read_csv(out / "runs" / "mid" / "val_predictions.csv").rename(columns={"path": "key"})
    oof.drop(columns=["root", "fold"]).to_csv(ens / "oof_predictions.csv", index=False)
    return out


def test_kfold_best_epoch_is_the_best_mean_over_folds(outputs):
    kf = outputs / "runs" / "kf"
    # fold 0 peaks at epoch 1, fold 1 at epoch 3; the folds' mean peaks at epoch 2 (0.55 / 0.6 / 0.5)
    for k, f1 in enumerate(([0.7, 0.6, 0.3], [0.4, 0.6, 0.7])):
        pd.DataFrame({"epoch": [1, 2, 3], "val_macro_f1": f1, "epoch_seconds": 1.0}).to_csv(
            kf / f"fold_{k}" / "metrics.csv", index=False)
    runs = {r.name: r for r in find_runs(outputs)}
    assert runs["runs/kf"].best_epoch == 2 and runs["runs/kf"].epochs == 3


def test_find_runs_and_the_one_metric(outputs):
    runs = {r.name: r for r in find_runs(outputs)}
    assert set(runs) == {"runs/best", "runs/mid", "runs/low", "runs/kf", "ensembles/e1", "tune/s1/trial_0000"}
    assert runs["tune/s1/trial_0000"].kind == "trial" and runs["runs/kf"].kind == "k-fold"
    assert runs["runs/best"].val_macro_f1 == pytest.approx(1.0) and runs["runs/best"].n_val == 4
    # mid: a,a / b->a / c,c / a,a: F1 a = 0.8, b = 0, c = 1 -> 0.6 over the three classes of the task
    assert runs["runs/mid"].val_macro_f1 == pytest.approx(0.6) and runs["runs/mid"].val_acc == pytest.approx(0.75)
    # kf: out-of-fold rows hold only a and b, both right; c counts with F1 0 -> 2/3, not 1.0
    assert runs["runs/kf"].kind == "k-fold" and runs["runs/kf"].val_macro_f1 == pytest.approx(2 / 3)
    assert runs["runs/kf"].epochs == 2 and runs["runs/kf"].seconds == pytest.approx(8.0)   # 2 folds x 2 x 2 s
    assert runs["ensembles/e1"].kind == "ensemble" and runs["ensembles/e1"].val_macro_f1 == pytest.approx(0.6)
    assert runs["runs/best"].best_epoch == 4 and runs["runs/best"].seconds == pytest.approx(20.0)
    assert "loss=focal" in runs["runs/best"].changed and "img_size" not in runs["runs/best"].changed
    assert "weights_source" not in runs["runs/best"].changed        # a record of the file found, not an option
    assert "lr=0.0001345" in runs["tune/s1/trial_0000"].changed.split()       # four significant digits, not 17


def test_sort_and_filter(outputs):
    runs = find_runs(outputs)
    board = leaderboard(runs)
    assert list(board["name"])[:2] == ["runs/best", "runs/kf"] and list(board.columns) == COLUMNS
    assert list(leaderboard(runs, sort="seconds")["name"]) == ["tune/s1/trial_0000", "runs/mid", "runs/kf",
                                                               "runs/low", "runs/best", "ensembles/e1"]
    # 2 s, 3 s, 8 s, 9 s, 20 s, no time last
    assert list(leaderboard(runs, filters=["kind=trial"])["name"]) == ["tune/s1/trial_0000"]
    assert list(leaderboard(runs, filters=["model=resnet10t", "kind=run"])["name"]) == ["runs/best", "runs/mid"]
    assert list(leaderboard(runs, filters=["val_macro_f1>0.6"])["name"]) == ["runs/best", "runs/kf"]
    assert list(leaderboard(runs, filters=["model~lite0"])["name"]) == ["runs/low"]
    assert list(leaderboard(runs, filters=["loss=focal"])["name"]) == ["runs/best"]     # a config option


def test_a_filter_splits_at_its_leftmost_operator(outputs):
    """parse_filter took the first operator of a fixed list found anywhere: 'name~a=b' read column 'name~a' (no such
    column: a refusal) with '='; it splits at the leftmost operator, the two-character one where both start there."""
    from imgcls.runs_config import parse_filter
    assert parse_filter("name~a=b") == ("name", "~", "a=b")
    assert parse_filter("name=a!=b") == ("name", "=", "a!=b")
    assert parse_filter("name~x>y") == ("name", "~", "x>y")
    assert parse_filter("lr>=0.1") == ("lr", ">=", "0.1")
    assert parse_filter("lr<=0.1") == ("lr", "<=", "0.1")
    assert parse_filter("model!=resnet10t") == ("model", "!=", "resnet10t")
    runs = find_runs(outputs)
    assert list(leaderboard(runs, filters=["name~a=b"])["name"]) == []       # a name that holds 'a=b': none
    assert list(leaderboard(runs, filters=["name~runs/b"])["name"]) == ["runs/best"]


def test_cli_table_csv_round_trip_json_and_errors(outputs, tmp_path):
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "kind=run", "--csv", str(tmp_path / "r.csv")])
    assert r.exit_code == 0, r.output
    back = pd.read_csv(tmp_path / "r.csv", keep_default_na=False, na_values=[""])
    want = leaderboard(find_runs(outputs), filters=["kind=run"])
    assert list(back.columns) == COLUMNS and list(back["name"]) == list(want["name"])
    assert ",32,4,4," in (tmp_path / "r.csv").read_text()            # img_size, epochs, best_epoch as integers
    assert f"wrote {tmp_path / 'r.csv'} (3 rows)" in " ".join(r.output.split()), r.output
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "kind=trial", "--csv", str(tmp_path / "t.csv")])
    assert r.exit_code == 0 and f"wrote {tmp_path / 't.csv'} (1 row)" in " ".join(r.output.split()), r.output
    assert np.allclose(back["val_macro_f1"], want["val_macro_f1"]) and list(back["changed"].fillna("")) == \
        list(want["changed"])
    r = CliRunner().invoke(app, ["runs", str(outputs), "--json", "-", "--sort", "name"])
    rows = json.loads(r.stdout)
    assert [x["name"] for x in rows] == sorted(x["name"] for x in rows) and len(rows) == 6
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    assert r.exit_code == 0 and "runs/best" in r.stdout and "1.0000" in r.stdout    # `imgcls runs > t.txt` has it
    assert "runs/best" not in r.stderr
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "colour=red"])
    assert r.exit_code == 2 and "no column or option 'colour'" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["runs", str(outputs), "--sort", "speed"])
    assert r.exit_code == 2
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "empty_nothing")])
    assert r.exit_code == 2 and "is not a folder" in r.output
    r = CliRunner().invoke(app, ["runs", str(outputs / "runz")])          # a typo names the close folder
    assert r.exit_code == 2 and f"(did you mean {outputs / 'runs'}?)" in " ".join(r.output.split()), r.output
    (tmp_path / "notes").write_text("x")       # a file where the folder goes is never its own suggestion
    r = CliRunner().invoke(app, ["runs", str(tmp_path / "notes")])
    assert r.exit_code == 2 and "is not a folder" in r.output and "did you mean" not in r.output, r.output


def test_an_output_path_that_cannot_be_written_is_one_line_before_any_run_is_read(outputs, tmp_path):
    """`runs --csv FILE/x.csv` (a file in the path) and `--csv FOLDER` (an existing folder) ended in a
    FileExistsError / IsADirectoryError traceback after the whole leaderboard was computed."""
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [(["runs", str(outputs), "--csv", str(afile / "x.csv")], "which is a file, not a folder"),
             (["runs", str(outputs), "--csv", str(folder)], f"give a file path such as {folder / 'runs.csv'}"),
             (["runs", str(outputs), "--json", str(folder)], f"give a file path such as {folder / 'runs.json'}"),
             (["runs", "report", str(outputs), "--out", str(folder)], "is an existing folder")]
    for args, want in cases:
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "Traceback" not in r.output, (args, r.output, r.exception)
        assert len(r.output.strip().splitlines()) == 1 and want in " ".join(r.output.split()), (args, r.output)
    assert afile.read_text() == "mine\n" and not any(folder.iterdir())


def test_a_flag_of_another_runs_action_is_refused(outputs, tmp_path):
    """`runs report --csv x.csv`, `runs --out page.html` (without report) and `runs diff A B --sort model` ran and
    ignored the flag: no CSV, no page where the user looks for it."""
    a, b = str(outputs / "runs" / "best"), str(outputs / "runs" / "mid")
    cases = [(["runs", "report", str(outputs), "--csv", str(tmp_path / "x.csv")], "--csv acts only with imgcls runs"),
             (["runs", str(outputs), "--out", str(tmp_path / "p.html")], "--out acts only with imgcls runs report"),
             (["runs", "diff", a, b, "--sort", "model"], "--sort acts only with"),
             (["runs", "diff", a, b, "--json", "-"], "--json acts only with")]
    for args, want in cases:
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, (args, r.output)
        assert want in " ".join(r.output.split()), (args, r.output)
    assert not list(tmp_path.glob("*.*")) and not (outputs / "runs_report.html").exists()
    r = CliRunner().invoke(app, ["runs", "report", str(outputs), "--filter", "kind=run", "--sort", "name",
                                 "--out", str(tmp_path / "p.html")])
    assert r.exit_code == 0 and (tmp_path / "p.html").is_file(), r.output


def test_diff_and_report(outputs, monkeypatch):
    d = diff_runs(outputs / "runs" / "best", outputs / "runs" / "mid")
    assert ("loss", "focal", "ce") in d["config"] and ("epochs", "4", "3") in d["config"]      # mid: the default
    assert {k for k, _, _ in d["config"]}.isdisjoint({"name", "weights_source"})     # where it ran: one line apart
    assert ("src", "data/a", "null") in d["config"]                                   # the data it learned from
    assert d["ran"] == ["name", "weights_source"]
    f1 = dict((k, (a, b, delta)) for k, a, b, delta in d["metrics"])["val_macro_f1"]
    assert f1[0] == pytest.approx(1.0) and f1[2] == pytest.approx(-0.4)
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "best"), str(outputs / "runs" / "mid")])
    assert r.exit_code == 0 and "focal" in r.output and "-0.4000" in r.output
    assert "where / how they ran, not in what they learned: name, weights_source" in " ".join(r.output.split())
    assert "-0m17s" in r.output                                   # 20 s against 3 s: a delta as a duration
    # the time is the epochs' (metrics.csv), not the wall time tune's trials.csv gives: said where it is shown
    assert re.search(r"time \(epochs\)\s.*-0m17s", r.output)
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    assert "time: the epochs' training and validation passes" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "mid"), str(outputs / "ensembles" / "e1")])
    assert r.exit_code == 0 and "not compared" in r.output and "loss" not in r.output and "{" not in r.output
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "best")])
    assert r.exit_code == 2
    from matplotlib.axes import Axes
    labels, plot = [], Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **kw: (labels.append(kw.get("label")), plot(self, *a, **kw))[1])
    r = CliRunner().invoke(app, ["runs", "report", str(outputs)])
    assert r.exit_code == 0, r.output
    assert "runs/kf (mean of 2 folds)" in labels and "runs/best" in labels     # a k-fold set's curve too
    html = (outputs / "runs_report.html").read_text()
    assert ">4.0000<" not in html and ">32<" in html                           # whole numbers stay whole
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)   # curves + heat map
    assert "runs/best" in html and "Per-class F1 across runs" in html
    import html as htmllib
    assert "time: the epochs' training and validation passes" in htmllib.unescape(html)


def test_the_runs_report_draws_the_curves_a_run_has_and_names_one_without_them(tmp_path, monkeypatch):
    """imgcls runs report crashed (KeyError: 'val_f1') on a run whose metrics.csv has neither val_macro_f1 nor
    val_f1: it draws the other runs' curves and names the run it drew none of."""
    from matplotlib.axes import Axes
    a = fake_run(tmp_path / "runs" / "a", "resnet10t", [("a", "a"), ("b", "b"), ("c", "c")])
    fake_run(tmp_path / "runs" / "b", "resnet10t", [("a", "a"), ("b", "a"), ("c", "c")])
    pd.read_csv(a / "metrics.csv").drop(columns=["val_macro_f1"]).to_csv(a / "metrics.csv", index=False)
    labels, plot = [], Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **kw: (labels.append(kw.get("label")), plot(self, *a, **kw))[1])
    r = CliRunner().invoke(app, ["runs", "report", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert labels == ["runs/b"]
    import html as htmllib
    page = htmllib.unescape((tmp_path / "runs_report.html").read_text())
    assert "no val macro-F1 curve of runs/a: its metrics.csv has no val_macro_f1 (or val_f1) column" in page


def test_diff_takes_the_names_the_leaderboard_lists(outputs, monkeypatch):
    """The leaderboard names runs from the folder it lists (runs/best, ensembles/e1 under outputs): `imgcls runs diff
    runs/best runs/mid`, typed from it, said 'runs/best does not exist'."""
    monkeypatch.chdir(outputs.parent)
    board = CliRunner().invoke(app, ["runs"])
    assert board.exit_code == 0 and "runs/best" in board.output and "ensembles/e1" in board.output
    r = CliRunner().invoke(app, ["runs", "diff", "runs/best", "ensembles/e1"])
    assert r.exit_code == 0, r.output
    assert "A: outputs/runs/best" in r.output and "B: outputs/ensembles/e1" in r.output
    r = CliRunner().invoke(app, ["runs", "diff", "runs/bets", "runs/mid"])
    assert r.exit_code == 2 and "runs/bets does not exist (did you mean outputs/runs/best?)" in r.output


def test_diff_given_a_tune_study_names_it_and_its_trial_folders(outputs, tmp_path):
    """`imgcls runs diff STUDY RUN` (a tune study folder) said "STUDY is not a run folder (no config.yaml or ensemble
    spec.yaml)", where predict names it a tune study and the trial folders to give: outputs.not_a_run, both's. Its
    trial folders were named in their folder order: the study's best trial (outputs.best_trial) comes first."""
    study = tmp_path / "tune" / "s1"
    for k in range(2):
        fake_run(study / f"trial_{k:04d}", "resnet10t", [("a", "a"), ("b", "b")])
    (study / "trials.csv").write_text("trial,state,value\n0,complete,0.5\n1,complete,0.4\n")
    best = outputs / "runs" / "best"
    # the study's best trial first, by its own record (trials.csv's values, best by its --metric), then the others
    trials = f"the study's best trial, {study / 'trial_0000'} (by its trials.csv), or another of its trial folders " \
             f"({study / 'trial_0001'})"
    for args in ([str(study), str(best)], [str(best), str(study)]):
        r = CliRunner().invoke(app, ["runs", "diff", *args])
        assert r.exit_code == 2 and " ".join(r.output.split()) == (
            f"error: {study} is an imgcls tune study folder, not a run; give a folder under outputs/runs or "
            f"outputs/ensembles, or {trials}"), r.output
    from imgcls.outputs import best_trial
    (study / "best_config.yaml").write_text("metric: loss\n")       # a --metric loss study: the lowest value
    assert best_trial(study) == study / "trial_0001"
    (study / "best_config.yaml").unlink()
    (study / "trials.csv").write_text("trial,state,value\n0,pruned,0.9\n1,running,\n")     # none complete
    r = CliRunner().invoke(app, ["runs", "diff", str(study), str(best)])
    assert r.exit_code == 2 and (f"or one of the study's trial folders ({study / 'trial_0000'}, "
                                 f"{study / 'trial_0001'})") in " ".join(r.output.split()), r.output
    (study / "trials.csv").write_text("trial,state,value\n0,complete,0.5\n1,complete,0.4\n")
    r = CliRunner().invoke(app, ["runs", "diff", str(study / "trial_0001"), str(best)])
    assert r.exit_code == 0, r.output
    pred = tmp_path / "pred"        # predict's output folder: named so too
    pred.mkdir()
    (pred / "predict.json").write_text("{}")
    r = CliRunner().invoke(app, ["runs", "diff", str(pred), str(best)])
    assert r.exit_code == 2 and " ".join(r.output.split()) == (
        f"error: {pred} is an imgcls predictions folder, not a run; give a folder under outputs/runs or "
        f"outputs/ensembles"), r.output
    r = CliRunner().invoke(app, ["predict", str(study), "--data", str(tmp_path)])
    assert r.exit_code == 2 and f"not a run; give a run folder (outputs/runs/NAME), or {trials}" in " ".join(
        r.output.split()), r.output


def test_diff_prints_the_per_class_f1_the_largest_change_first(tmp_path):
    """`imgcls runs diff A B` computed a per-class table and printed none (only a Python caller got it): it prints
    each class's F1 in A and B and B - A, the largest change first, the top 10 of 18 classes and a line saying how
    many more changed less."""
    classes = [f"k{i:02d}" for i in range(18)]
    truth = [c for i, c in enumerate(classes) for _ in range(2 + i % 5)]          # 2 to 6 rows a class
    rng = np.random.default_rng(0)
    wrong = rng.random(len(truth)) < 0.4
    guess = [classes[(classes.index(t) + 1) % 18] if w else t for t, w in zip(truth, wrong)]
    a = fake_run(tmp_path / "a", "resnet10t", list(zip(truth, truth)), classes=classes)
    b = fake_run(tmp_path / "b", "resnet10t", list(zip(truth, guess)), classes=classes)
    pc = diff_runs(a, b)["per_class"]
    change = pc.assign(c=pc["delta_f1"].abs()).sort_values("c", ascending=False, kind="stable")
    assert change["c"].iloc[9] > change["c"].iloc[10]                       # a clear cut after the 10th
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.output[r.output.index("per-class F1"):]
    top = change["class"].iloc[:10].tolist()
    assert [c for c in re.findall(r"\bk\d\d\b", out)] == top, out      # the largest change first, ten of them
    row = re.search(rf"{top[0]}[\s│]+1\.0000[\s│]+(\S+)[\s│]+(\S+)", out)
    f1_b, delta = change.iloc[0][["f1_b", "delta_f1"]]
    assert row and row.groups() == (f"{f1_b:.4f}", f"{delta:+.4f}"), out
    assert f"8 more class(es) changed by at most {change['c'].iloc[10]:.4f}" in " ".join(out.split())


def test_diff_shows_a_class_without_validation_rows_as_not_scored_not_as_f1_0(tmp_path):
    """`imgcls runs diff A B` printed a class no validation row of a run has (support 0) as F1 0.0000, a change of
    +0.0000 (or, where the other run has rows of it, the largest change), where predict's and train's reports
    show '–'. Its cell is '–' (a class one run alone has: blank, as before), its change none, listed last."""
    classes = ["x", "y", "z"]
    a = fake_run(tmp_path / "a", "resnet10t", [("x", "x"), ("y", "x"), ("x", "x")], classes=classes)
    b = fake_run(tmp_path / "b", "resnet10t", [("x", "x"), ("y", "y"), ("z", "z")], classes=classes)
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.output[r.output.index("per-class F1"):]
    rows = {m[0]: m[1:] for m in re.findall(r"│ ([xyz])\s+│\s+(\S+)\s+│\s+(\S+)\s+│\s*(\S*)\s+│", out)}
    assert rows == {"y": ("0.0000", "1.0000", "+1.0000"), "x": ("0.8000", "1.0000", "+0.2000"),
                    "z": ("–", "1.0000", "")}, out
    assert re.findall(r"│ ([xyz]) ", out) == ["y", "x", "z"], out
    assert "–: no validation rows of the class in that run" in " ".join(out.split()), out


def test_the_runs_report_heat_map_shows_a_class_without_validation_rows_as_not_scored(tmp_path, monkeypatch):
    """The runs report's per-class F1 heat map coloured and labelled a class with no validation row in a run as F1
    0.00, as diff printed it: its cell is '–' (uncoloured), as the reports of predict and train show it."""
    import imgcls.report as report
    from imgcls.runs import _heat_uri
    classes = ["x", "y", "z"]
    fake_run(tmp_path / "runs" / "a", "resnet10t", [("x", "x"), ("y", "x"), ("x", "x")], classes=classes)
    fake_run(tmp_path / "runs" / "b", "resnet10t", [("x", "x"), ("y", "y"), ("z", "z")], classes=classes)
    drawn = []

    def spy(fig, dpi=100):
        ax = fig.axes[0]
        drawn.append(({(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts},
                      ax.images[0].get_array()))
        return "data:image/png;base64,"
    monkeypatch.setattr(report, "figure_data_uri", spy)
    runs = sorted(find_runs(tmp_path), key=lambda r: r.name)
    _heat_uri(runs)
    texts, mat = drawn[0]
    assert texts == {(0, 0): "0.80", (0, 1): "0.00", (0, 2): "–", (1, 0): "1.00", (1, 1): "1.00", (1, 2): "1.00"}
    assert np.ma.is_masked(mat[0, 2]) or np.isnan(mat[0, 2])


def test_diff_keeps_the_task_s_class_order_among_equal_changes(tmp_path):
    """diff_runs merged the two per-class tables with an outer join, which sorts the classes as text: classes of
    the same change came 0, 1, 10, 11, 2, ... Both the returned table and the printed one keep the task's class
    order (the run's classes) among classes whose F1 changed alike."""
    classes = [str(i) for i in range(12)]
    truth = [c for c in classes for _ in range(2)]
    swap = {"0": "1", "1": "0", "2": "10", "10": "2", "3": "11", "11": "3"}     # each one row taken for the other:
    guess = [swap.get(t, t) if i % 2 else t for i, t in enumerate(truth)]     # F1 1 -> 0.5 for these six alike
    a = fake_run(tmp_path / "a", "resnet10t", list(zip(truth, truth)), classes=classes)
    b = fake_run(tmp_path / "b", "resnet10t", list(zip(truth, guess)), classes=classes)
    pc = diff_runs(a, b)["per_class"]
    assert pc["class"].tolist() == classes
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.output[r.output.index("per-class F1"):]
    rows = re.findall(r"^\W*(\d+)\W+\d\.\d{4}", out, flags=re.M)
    assert rows == ["0", "1", "2", "3", "10", "11"], out          # not 0, 1, 10, 11, 2, 3


def test_diff_heading_comes_before_its_tables_on_stdout(outputs, capsys):
    """runs diff's `A: ... / B: ...` heading went to stderr and its tables to stdout: on a terminal the two streams
    are written apart, so the heading could come after the tables, and `imgcls runs diff A B > diff.txt` kept
    tables whose A and B columns named no run. The heading is the command's output with its tables: on stdout,
    before them, and nothing of it on stderr."""
    from imgcls.runs import run_runs
    a, b = outputs / "runs" / "best", outputs / "runs" / "mid"
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"A: {a}\nB: {b}\n"), r.stdout
    assert r.stdout.index("options that differ") < r.stdout.index("metrics (val") < r.stdout.index("per-class F1")
    assert "A: " not in r.stderr, r.stderr
    capsys.readouterr()
    run_runs("diff", [a, b])                    # from Python, as the command prints it
    said = capsys.readouterr()
    assert said.out.startswith(f"A: {a}\nB: {b}\n") and "A: " not in said.err


def test_scores_are_labelled_with_their_rows_and_fitted_weights_rank_on_the_cross_fitted_score(outputs):
    """A weighted ensemble whose weights were fitted on the rows it is scored on ranks on the cross-fitted score
    imgcls ensemble recorded (else it is labelled optimistic); every score says which rows it came from, and a diff
    of scores over other rows says so instead of a bare delta."""
    best = pd.read_csv(outputs / "runs" / "best" / "val_predictions.csv")
    for name, scores in (("fitted", {"weights_fitted_on_scored_rows": True, "ensemble_macro_f1": 1.0,
                                     "ensemble_macro_f1_crossfit": 0.3, "crossfit_folds": 5}),
                         ("nocross", {"weights_fitted_on_scored_rows": True, "ensemble_macro_f1": 1.0})):
        ens = outputs / "ensembles" / name
        ens.mkdir(parents=True)
        (ens / "spec.yaml").write_text(yaml.safe_dump({
            "kind": "imgcls-ensemble", "name": name, "method": "weighted", "classes": CLASSES, "scores": scores,
            "members": [member("best", 0.9), member("mid", 0.1)]}))
        best.assign(key=[f"{r}/{p}" for r, p in zip(best["root"], best["path"])]).drop(
            columns=["root", "path", "fold"]).to_csv(ens / "oof_predictions.csv", index=False)
    runs = {r.name: r for r in find_runs(outputs)}
    fitted, nocross = runs["ensembles/fitted"], runs["ensembles/nocross"]
    assert fitted.val_macro_f1 == pytest.approx(0.3) and np.isnan(fitted.val_acc)     # not 1.0 on its fitting rows
    assert fitted.scored_on == "common val, weights cross-fitted"
    assert nocross.val_macro_f1 == pytest.approx(1.0)
    assert nocross.scored_on == "common val, weights fitted on these rows (optimistic)"
    assert runs["runs/best"].scored_on == "val" and runs["runs/kf"].scored_on == "OOF"
    assert runs["ensembles/e1"].scored_on == "common val"                               # soft: nothing fitted
    # an ensemble of k-fold sets (several checkpoints per member) is scored on their shared out-of-fold rows
    kf = outputs / "ensembles" / "kfolds"
    kf.mkdir()
    (kf / "spec.yaml").write_text(yaml.safe_dump({
        "kind": "imgcls-ensemble", "name": "kfolds", "method": "soft", "classes": CLASSES, "scores": {},
        "members": [{"name": n, "run": n, "weight": 0.5, "checkpoints": [f"{n}/fold_{k}/best.pt" for k in range(2)]}
                    for n in ("kf", "kf2")]}))
    shutil.copy(outputs / "ensembles" / "fitted" / "oof_predictions.csv", kf)
    assert {r.name: r for r in find_runs(outputs)}["ensembles/kfolds"].scored_on == "common OOF"
    shutil.rmtree(kf)
    board = leaderboard(list(runs.values()))
    assert list(board["name"]).index("ensembles/fitted") > list(board["name"]).index("runs/mid")   # 0.3 < 0.6
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "val (4)" in out and "OOF (4)" in out
    assert "common val (4), weights cross-fitted" in out and "weights fitted on these rows (optimistic)" in out
    # the caption says why the cross-fitted ensemble's val acc cell is blank (it left it unsaid)
    assert "without it (its macro-F1; no accuracy is recorded so: val acc blank)" in out, out
    # diff: the single run's 4 val rows against the k-fold set's out-of-fold rows (other images)
    d = diff_runs(outputs / "runs" / "best", outputs / "runs" / "kf")
    assert not d["same_rows"]
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "best"), str(outputs / "runs" / "kf")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and re.search(r"scored on\W+val \(4\)\W+OOF \(4\)\W+other rows", out), out
    assert re.search(r"val_macro_f1\W+1.0000\W+0.6667\W+-0.3333 \(other rows\)", out), out
    assert "not a like-for-like comparison" in out
    # an ensemble scored on the very images of its member's validation rows (common val / common OOF against val /
    # OOF): the same rows, a plain delta, not "scored on different images"
    ens = outputs / "ensembles" / "same"
    ens.mkdir()
    (ens / "spec.yaml").write_text(yaml.safe_dump({
        "kind": "imgcls-ensemble", "name": "same", "method": "soft", "classes": CLASSES, "scores": {},
        "members": [member("best", 0.5), member("mid", 0.5)]}))
    pd.read_csv(outputs / "runs" / "mid" / "val_predictions.csv").pipe(
        lambda v: v.assign(key=[f"{r}/{q}" for r, q in zip(v["root"], v["path"])])).drop(
        columns=["root", "path", "fold"]).to_csv(ens / "oof_predictions.csv", index=False)
    assert diff_runs(ens, outputs / "runs" / "best")["same_rows"]
    r = CliRunner().invoke(app, ["runs", "diff", str(ens), str(outputs / "runs" / "best")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and re.search(r"scored on\W+common val \(4\)\W+val \(4\)\W+same rows", out), out
    assert "(other rows)" not in out and "different images" not in out, out
    # its weights fitted on those very rows (no cross-fitted score recorded): the same images, an optimistic score
    spec = yaml.safe_load((ens / "spec.yaml").read_text())
    spec["scores"] = {"weights_fitted_on_scored_rows": True}
    (ens / "spec.yaml").write_text(yaml.safe_dump(spec))
    d = diff_runs(ens, outputs / "runs" / "best")
    assert d["same_rows"] and d["optimistic"] == ["same"]
    r = CliRunner().invoke(app, ["runs", "diff", str(ens), str(outputs / "runs" / "best")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and re.search(r"val_macro_f1\W+\S+\W+\S+\W+[-+][\d.]+ \(optimistic\)", out), out
    assert "same's ensemble weights were fitted on the rows it is scored on (optimistic)" in out, out
    shutil.rmtree(ens)
    # two runs validated on the same images: a plain delta
    assert diff_runs(outputs / "runs" / "best", outputs / "runs" / "mid")["same_rows"]
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "best"), str(outputs / "runs" / "mid")])
    assert "(other rows)" not in r.output and "same rows" in r.output


def _cross_fitted_ensemble(outputs, name="xfit"):
    """A weighted ensemble of best and mid whose weights were fitted on its common val rows: its saved predictions
    are best's (per-class F1 1.0 each), its recorded cross-fitted macro-F1 0.3."""
    best = pd.read_csv(outputs / "runs" / "best" / "val_predictions.csv")
    ens = outputs / "ensembles" / name
    ens.mkdir(parents=True)
    (ens / "spec.yaml").write_text(yaml.safe_dump({
        "kind": "imgcls-ensemble", "name": name, "method": "weighted", "classes": CLASSES,
        "scores": {"weights_fitted_on_scored_rows": True, "ensemble_macro_f1": 1.0,
                   "ensemble_macro_f1_crossfit": 0.3, "crossfit_folds": 5},
        "members": [member("best", 0.9), member("mid", 0.1)]}))
    best.assign(key=[f"{r}/{p}" for r, p in zip(best["root"], best["path"])]).drop(
        columns=["root", "path", "fold"]).to_csv(ens / "oof_predictions.csv", index=False)
    return ens


def test_diff_says_an_ensemble_s_per_class_f1_is_of_its_fitted_weights_where_its_macro_f1_is_cross_fitted(outputs):
    """runs diff of a weighted ensemble (weights fitted on its common val rows) against its member: the metrics
    table showed the cross-fitted macro-F1 (0.3, 'weights cross-fitted'), while the per-class F1 under it came
    from the saved predictions of the weights fitted on those very rows (1.0 each: mean 1.0, not 0.3), headed
    'saved validation predictions' alone, as comparable as the member's. It now says whose they are."""
    ens = _cross_fitted_ensemble(outputs)
    d = diff_runs(outputs / "runs" / "mid", ens)
    assert d["per_class_fitted"] == ["xfit"]
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "mid"), str(ens)], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = " ".join(r.output[r.output.index("per-class F1"):].split())
    assert ("xfit's per-class F1 is of its ensemble weights fitted on these rows (optimistic): its val_macro_f1 "
            "above is the cross-fitted one") in out, out
    assert diff_runs(outputs / "runs" / "mid", outputs / "runs" / "best")["per_class_fitted"] == []


def test_the_report_says_an_ensemble_s_heat_map_row_is_of_its_fitted_weights_where_its_macro_f1_is_cross_fitted(
        outputs):
    """imgcls runs report: the leaderboard ranked a weighted ensemble (weights fitted on its common val rows) on its
    cross-fitted macro-F1 (0.3), while its row of the per-class F1 heat map came from the saved predictions of the
    weights fitted on those very rows (1.0 each), unlabelled. The report now says so under the heat map, in the
    words runs diff uses."""
    import html as htmllib
    _cross_fitted_ensemble(outputs)
    r = CliRunner().invoke(app, ["runs", "report", str(outputs)])
    assert r.exit_code == 0, r.output
    page = " ".join(htmllib.unescape((outputs / "runs_report.html").read_text()).split())
    said = ("ensembles/xfit's per-class F1 is of its ensemble weights fitted on these rows (optimistic): its "
            "val_macro_f1 in the leaderboard is the cross-fitted one")
    assert page.count(said) == 1 and page.index("Per-class F1 across runs") < page.index(said), page[-2000:]
    assert "ensembles/e1's per-class F1" not in page                  # a soft ensemble: nothing fitted, no note


def test_a_run_that_is_training_is_marked_running(outputs):
    """A single run or a k-fold set still training (its folder locked by imgcls train) looked finished."""
    from imgcls.train.rundir import RunLock
    if RunLock.held(outputs) is None:
        pytest.skip("no /proc/locks here")
    with RunLock(outputs / "runs" / "kf"), RunLock(outputs / "runs" / "mid"):
        df = leaderboard(find_runs(outputs), sort="name")
        assert dict(zip(df["name"], df["state"])) == {"runs/best": "", "runs/kf": "running", "runs/low": "",
                                                      "runs/mid": "running", "tune/s1/trial_0000": "",
                                                      "ensembles/e1": ""}
        r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "state=running"])
        assert r.exit_code == 0 and "2 runs of the 6" in r.stdout and "running 3/3" in r.stdout, r.stdout
    assert set(leaderboard(find_runs(outputs))["state"]) == {""}          # the lock goes with the process


@pytest.mark.parametrize("cmd", ["eda", "clean", "split", "train"])
def test_an_output_folder_given_as_the_data_is_refused(outputs, tmp_path, cmd):
    """`imgcls train outputs/runs/RUN` read the run's plots as a folder layout (its fold_* folders the classes) and
    trained on them, exit 0; split and predict --data read it too. Now one line naming what it is."""
    from PIL import Image
    for d in (outputs / "runs" / "best", outputs / "runs" / "kf" / "fold_0", outputs / "runs" / "kf" / "fold_1"):
        Image.new("RGB", (8, 8)).save(d / "curves.png")        # what makes it readable as images
    preds = outputs / "predictions" / "p1"
    preds.mkdir(parents=True)
    (preds / "predict.json").write_text("{}")
    Image.new("RGB", (8, 8)).save(preds / "confusion_matrix.png")
    cases = {outputs / "runs" / "best": "an imgcls train run folder, not a dataset; give a dataset folder or "
                                        "manifest.csv (this run trained on data/a)",
             outputs / "runs" / "kf": "an imgcls train run folder",
             outputs / "runs" / "kf" / "fold_0": "an imgcls train run folder",
             outputs / "ensembles" / "e1": "an imgcls ensemble folder",
             outputs / "tune" / "s1": "an imgcls tune study folder",
             preds: "an imgcls predictions folder",
             outputs / "runs": "a folder of imgcls outputs (best: train run)",
             outputs: "a folder of imgcls outputs (ensembles/e1: ensemble)"}
    for src, msg in cases.items():
        r = CliRunner().invoke(app, [cmd, str(src), "--out", str(tmp_path / "o" / "x.csv" if cmd == "split"
                                                         else tmp_path / "o"), "--quiet"])
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and f"{src} is {msg}" in lines[0], (src, r.output)
    assert not (tmp_path / "o").exists()


def test_output_kind_leaves_datasets_alone(tmp_path):
    from imgcls.outputs import output_kind, refuse_output_as_data
    from PIL import Image
    data = tmp_path / "data"
    for c in ("cat", "dog"):
        (data / c).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(data / c / "1.png")
    (data / "config.yaml").write_text("a: 1\n")     # a config.yaml alone is not a run
    assert output_kind(data) is None and output_kind(data / "cat") is None
    refuse_output_as_data(data)
    refuse_output_as_data(data / "cat" / "1.png")   # a file: not a folder of outputs


def test_the_task_column_names_what_a_run_predicts(outputs):
    """`imgcls runs` ranked a 3-class `train --target mask` run (macro-F1 0.28) above 18-class runs (0.01-0.06) in
    one column with nothing naming the task; the task column says it (the column predicted, its class count)."""
    fake_run(outputs / "runs" / "t_mask", "resnet10t", [("a", "a"), ("b", "b")], target="mask")
    board = leaderboard(find_runs(outputs), sort="name")
    task = dict(zip(board["name"], board["task"]))
    assert task["runs/t_mask"] == "mask (3)" and task["runs/best"] == "label (3)" and task["ensembles/e1"] == \
        "label (3)"
    assert list(leaderboard(find_runs(outputs), filters=["task=mask (3)"])["name"]) == ["runs/t_mask"]
    by_task = leaderboard(find_runs(outputs), sort="task")["task"].tolist()     # text: A to Z, as name and kind
    assert by_task == sorted(by_task)


def test_diff_of_runs_of_other_tasks_says_their_scores_do_not_compare(outputs):
    """`runs diff t_mask t_gender` printed the gender run's macro-F1 minus the mask run's as `+0.2556` beside `same
    rows`, a difference of two tasks' scores labelled like for like; the leaderboard says they compare not at all."""
    fake_run(outputs / "runs" / "t_mask", "resnet10t", [("a", "a"), ("b", "a")], target="mask")
    fake_run(outputs / "runs" / "t_gender", "resnet10t", [("a", "a"), ("b", "b")], target="gender")
    d = diff_runs(outputs / "runs" / "t_mask", outputs / "runs" / "t_gender")
    assert d["same_rows"] and not d["same_task"]
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "t_mask"), str(outputs / "runs" / "t_gender")],
                           terminal_width=200)
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "mask (3)" in out and "gender (3)" in out and "other task" in out
    assert "same rows" not in out
    assert diff_runs(outputs / "runs" / "best", outputs / "runs" / "mid")["same_task"]


def test_diff_of_a_run_not_scored_yet_does_not_call_its_rows_other_rows(outputs):
    """`runs diff RUN RUN2` of a run stopped in its first epoch (no val_predictions.csv) said "A and B are scored on
    different images ... not a like-for-like comparison" and `other rows`, of runs scored on no images at all (the
    same run given twice too). It says which of them has no saved validation predictions."""
    runs = outputs / "runs"
    for name in ("new1", "new2"):
        fake_run(runs / name, "resnet10t", [("a", "a")])
        (runs / name / "val_predictions.csv").unlink()
    for a, b, who in ((runs / "new1", runs / "new2", "A and B have"), (runs / "new1", runs / "new1", "A and B have"),
                      (runs / "best", runs / "new1", "B has")):
        r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], terminal_width=200)
        out = " ".join(r.output.split())
        assert r.exit_code == 0 and "Traceback" not in r.output, r.output
        assert f"{who} no saved validation predictions: no scores to compare" in out, out
        assert "different images" not in out and "other rows" not in out, out
    r = CliRunner().invoke(app, ["runs", "diff", str(runs / "best"), str(runs / "low")], terminal_width=200)
    assert "no saved validation predictions" not in " ".join(r.output.split())       # both scored: as before


def test_csv_of_a_run_not_scored_yet_claims_no_rows(outputs):
    """`runs --csv -` wrote `scored_on=val` with `n_val=0` for a run stopped in its first epoch (no
    val_predictions.csv), a score's rows it does not have, while the table's cell is blank. Its scored_on is blank
    in the CSV and the JSON; a scored run keeps its own."""
    runs = outputs / "runs"
    fake_run(runs / "new", "resnet10t", [("a", "a")])
    (runs / "new" / "val_predictions.csv").unlink()
    r = CliRunner().invoke(app, ["runs", str(outputs), "--csv", "-"])
    assert r.exit_code == 0, r.output
    back = pd.read_csv(__import__("io").StringIO(r.stdout), keep_default_na=False).set_index("name")
    assert (back.loc["runs/new", "scored_on"], back.loc["runs/new", "n_val"]) == ("", 0), back
    assert back.loc["runs/best", "scored_on"] == "val" and back.loc["runs/kf", "scored_on"] == "OOF", back
    r = CliRunner().invoke(app, ["runs", str(outputs), "--json", "-"])
    assert {d["name"]: d["scored_on"] for d in json.loads(r.stdout)}["runs/new"] == "", r.stdout


def test_diff_with_a_run_that_records_no_classes_does_not_call_it_another_task(outputs):
    """A run an imgcls before plan.json started and that stopped before its first validation (its config.yaml and
    train.log, no val_predictions.csv: no classes recorded, its task 'label') against a scored run: `runs diff`
    said "A predicts label, B label (3): scores of other tasks do not compare" of two runs of the one column. Its
    class count is not known, which is no other task (runs.same_task); another column still is."""
    from imgcls.train import TrainConfig
    old = outputs / "runs" / "old"
    old.mkdir()
    TrainConfig(src="data/a", model="resnet10t", img_size=32, epochs=2, name="old").save(old / "config.yaml")
    (old / "train.log").write_text("run old: resnet10t\n")
    d = diff_runs(old, outputs / "runs" / "best")
    assert d["a"].task == "label" and d["b"].task == "label (3)" and d["same_task"]
    r = CliRunner().invoke(app, ["runs", "diff", str(old), str(outputs / "runs" / "best")], terminal_width=200)
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "other task" not in out and "predicts" not in out, out
    from imgcls.runs import same_task
    assert same_task("label (3)", "label") and same_task("label", "label") and same_task("mask (3)", "mask (3)")
    assert not same_task("label", "mask (3)") and not same_task("label (18)", "label (3)")


def test_a_run_that_records_no_classes_is_ranked_with_its_column_s_task(outputs):
    """`imgcls runs` put an old run recording no class count (its task 'label') in a section of its own, apart
    from the 'label (3)' runs, and titled the table "each task's runs ranked apart", though runs.same_task (`runs
    diff`'s) calls them the same task: it is ranked with the one task of its column (task_groups), and the report
    charts it there; another column (mask), and several counts of its column (18 and 3), stay apart."""
    from imgcls.train import TrainConfig
    old = outputs / "runs" / "old"
    old.mkdir()
    TrainConfig(src="data/a", model="resnet10t", img_size=32, epochs=2, name="old").save(old / "config.yaml")
    (old / "train.log").write_text("run old: resnet10t\n")
    r = CliRunner().invoke(app, ["runs", str(outputs)], terminal_width=250)
    assert r.exit_code == 0 and "ranked apart" not in " ".join(r.output.split()), r.output
    fake_run(outputs / "runs" / "t_mask", "resnet10t", [("a", "a"), ("b", "b"), ("c", "c")], target="mask")
    board = leaderboard(find_runs(outputs))
    assert board["task"].tolist() == ["label (3)"] * 6 + ["label", "mask (3)"], board[["name", "task"]]
    r = CliRunner().invoke(app, ["runs", "report", str(outputs)])
    assert r.exit_code == 0, r.output
    html = (outputs / "runs_report.html").read_text()
    assert re.findall(r'<img[^>]*alt="val macro-F1 by epoch: ([^"]*)"', html) == ["label (3)", "mask (3)"]
    from imgcls.runs import task_groups
    assert task_groups(["label", "label (3)", "mask (3)", "mask"]) == {
        "label": "label (3)", "label (3)": "label (3)", "mask (3)": "mask (3)", "mask": "mask (3)"}
    assert task_groups(["label", "label (18)", "label (3)"])["label"] == "label"     # same as each: neither's
    assert task_groups(["label", "gender (2)"])["label"] == "label"


def test_a_row_that_is_not_a_finished_run_says_so(outputs, tmp_path):
    """`imgcls runs outputs/tune` ranked a trial Optuna pruned at epoch 2 of 3 (its checkpoints deleted by tune
    --keep) second, and a run stopped by Ctrl-C read as finished: the state column and the epochs cell say so, by
    the evidence each leaves (trials.csv, last.pt's finished flag, metrics.csv against config.yaml, oof_score.json)."""
    import torch
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    runs_dir, study = outputs / "runs", outputs / "tune" / "s1"
    # a run interrupted after 2 of its 6 epochs (no last.pt: deleted), one whose last.pt says it had not finished
    # although metrics.csv reached its epochs (killed between the two writes), and one that early-stopped
    fake_run(runs_dir / "ctrlc", "resnet10t", good, epochs=2)
    (runs_dir / "ctrlc" / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32,
                                                                    "epochs": 6}))
    fake_run(runs_dir / "killed", "resnet10t", good, epochs=3)
    torch.save({"state_dict": {}, "meta": {}, "train_state": {"finished": False, "epoch": 1}},
               runs_dir / "killed" / "last.pt")
    for name in ("early", "early_nolast", "cut_nolast"):      # 2 epochs without a gain: train stopped at 4 of 10
        fake_run(runs_dir / name, "resnet10t", good, epochs=4, early_stop=2,
                 f1=None if name == "cut_nolast" else [0.2, 0.6, 0.5, 0.4])     # cut: each epoch better
        (runs_dir / name / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32,
                                                                    "epochs": 10, "early_stop": 2}))
    torch.save({"state_dict": {}, "meta": {}, "train_state": {"finished": True, "epoch": 3}},
               runs_dir / "early" / "last.pt")      # its record of the early stop; without it: its metrics.csv
    # a k-fold set stopped in its second fold (no oof_score.json)
    kf = runs_dir / "kf_stop"
    fake_run(kf / "fold_0", "resnet10t", good[:2], epochs=2)
    fake_run(kf / "fold_1", "resnet10t", good[2:], epochs=1)
    for d in (kf, kf / "fold_0", kf / "fold_1"):
        (d / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2,
                                                       "folds": "0,1,2"}))
    # trials: pruned at epoch 2 of 3 and failed at 1 (checkpoints gone), one Optuna lists as running whose process
    # is gone (no lock)
    for n, done in ((1, 2), (2, 1), (3, 1)):
        fake_run(study / f"trial_{n:04d}", "resnet10t", good, epochs=done)
        (study / f"trial_{n:04d}" / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32,
                                                                             "epochs": 3}))
    (study / "trials.csv").write_text("trial,state,value,checkpoints\n0,complete,0.5,\n"
                                      "1,pruned,,removed (--keep best-1)\n2,fail,,removed (--keep best-1)\n"
                                      "3,running,,\n")
    board = leaderboard(find_runs(outputs), sort="name")
    got = {n: (s, p) for n, s, p in zip(board["name"], board["state"], board["progress"])}
    assert got["runs/ctrlc"] == ("stopped", "2/6") and got["runs/killed"] == ("stopped", "3/3")
    assert got["runs/early"] == ("", "4/10, early stop")                 # finished: train's early stop
    # last.pt gone: train's early-stop rule over its metrics.csv's val macro-F1 says which
    assert got["runs/early_nolast"] == ("", "4/10, early stop") and got["runs/cut_nolast"] == ("stopped", "4/10")
    # a finished --folds all set said "folds done 2", a bare count beside every other row's done/set: its folds are
    # the ones oof_score.json records
    assert got["runs/best"] == ("", "4/4") and got["runs/kf"] == ("", "folds done 2/2")
    assert got["runs/kf_stop"] == ("stopped", "folds done 1/3, fold_1 1/2")
    assert got["tune/s1/trial_0000"] == ("", "1/1") and got["tune/s1/trial_0001"] == ("pruned", "2/3")
    assert got["tune/s1/trial_0002"] == ("failed", "1/3") and got["tune/s1/trial_0003"] == ("stopped", "1/3")
    assert got["ensembles/e1"] == ("", "")
    assert list(leaderboard(find_runs(outputs), filters=["state=pruned"])["name"]) == ["tune/s1/trial_0001"]
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "stopped 2/6" in out and "pruned 2/3" in out and "failed 1/3" in out, out
    assert "4/10, early stop" in out and "stopped folds done 1/3, fold_1 1/2" in out
    assert re.search(r"runs/best\W+run\W+label \(3\)\W+resnet10t\W+32\W+4\W", out)   # finished: its epochs, bare
    r = CliRunner().invoke(app, ["runs", str(outputs), "--json", "-", "--filter", "kind=trial"])
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["tune/s1/trial_0001"]["state"] == "pruned" and rows["tune/s1/trial_0001"]["progress"] == "2/3"
    assert rows["tune/s1/trial_0001"]["epochs"] == 2
    r = CliRunner().invoke(app, ["runs", str(outputs), "--csv", "-", "--filter", "name=runs/ctrlc"])
    back = pd.read_csv(__import__("io").StringIO(r.stdout), keep_default_na=False)
    assert list(back[["state", "progress"]].iloc[0]) == ["stopped", "2/6"]
    r = CliRunner().invoke(app, ["runs", "report", str(outputs)])
    html = (outputs / "runs_report.html").read_text()
    assert r.exit_code == 0 and ">pruned<" in html and ">stopped<" in html and ">2/6<" in html


def test_a_k_fold_set_names_a_fold_not_known_to_have_finished(outputs):
    """A k-fold set with --early-stop whose fold's last.pt is gone (deleted by hand, tune --keep) and whose
    metrics.csv stops before the epochs set (early-stopped or interrupted: not known where it holds no --metric
    values for train's early-stop rule to tell) read 'folds done 1/3' alone:
    the fold was neither counted nor named (only stopped folds and '?' ones were). It is named as a single run's
    cell reads it ('fold_1 4/10'); in a set train finished (oof_score.json, written after the last fold) it did
    finish, and counts."""
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    for name, folds in (("kf_early", "0,1,2"), ("kf_early_done", "0,1"), ("kf_ruled", "0,1,2")):
        kf = outputs / "runs" / name
        fake_run(kf / "fold_0", "resnet10t", good[:2], epochs=10)
        fake_run(kf / "fold_1", "resnet10t", good[2:], epochs=4, f1=[0.2, 0.6, 0.5, 0.4])
        if name != "kf_ruled":      # no --metric values: train's early-stop rule cannot tell
            pd.read_csv(kf / "fold_1" / "metrics.csv").drop(columns="val_macro_f1").to_csv(
                kf / "fold_1" / "metrics.csv", index=False)
        for d in (kf, kf / "fold_0", kf / "fold_1"):
            (d / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 10,
                                                           "early_stop": 2, "folds": folds}))
    (outputs / "runs" / "kf_early_done" / "oof_score.json").write_text(json.dumps({"folds": [0, 1]}))
    board = leaderboard(find_runs(outputs), sort="name")
    got = {n: (s, p) for n, s, p in zip(board["name"], board["state"], board["progress"])}
    assert got["runs/kf_early"] == ("stopped", "folds done 1/3, fold_1 4/10")
    assert got["runs/kf_early_done"] == ("", "folds done 2/2")
    assert got["runs/kf_ruled"] == ("stopped", "folds done 2/3")       # fold_1 early-stopped by its val macro-F1
    assert got["runs/kf"] == ("", "folds done 2/2")


def test_a_finished_k_fold_set_a_fold_was_removed_from_is_fold_missing_with_no_score(outputs):
    """`rm -rf RUN/fold_1` on a finished k-fold set: runs still showed its out-of-fold score (over the removed fold's
    rows too), "folds done 1/2" and no state, while predict and ensemble refuse the set. It is `fold missing`,
    naming the fold, with no score; a fold's best.pt removed beside another's is the same."""
    kf = outputs / "runs" / "kf"
    for k in range(2):
        (kf / f"fold_{k}" / "best.pt").write_bytes(b"")        # found by its name; never read
    before = {r.name: r for r in find_runs(outputs)}["runs/kf"]
    assert before.state == "" and before.n_val == 4 and np.isfinite(before.val_macro_f1)
    shutil.rmtree(kf / "fold_1")
    run = {r.name: r for r in find_runs(outputs)}["runs/kf"]
    assert (run.state, run.progress) == ("fold missing", "folds done 1/2, fold_1 gone")
    assert np.isnan(run.val_macro_f1) and run.n_val == 0 and run.row_keys is None
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    assert r.exit_code == 0 and "fold missing" in r.stdout, r.output
    fake_run(kf / "fold_1", "resnet10t", [("a", "a"), ("b", "b")], epochs=2)      # back, but without its best.pt
    assert {r.name: r for r in find_runs(outputs)}["runs/kf"].state == "fold missing"


def test_a_fold_folder_outside_a_sets_plan_is_not_counted_as_one_of_its_folds(outputs):
    """A finished 2-fold set with a fold_2 folder its plan does not name (copied in by hand) read `folds done 3/2`:
    run_state counted every fold folder against the plan. Only the planned folds count; the stray one is named."""
    kf = outputs / "runs" / "kf"
    shutil.copytree(kf / "fold_1", kf / "fold_2")
    run = {r.name: r for r in find_runs(outputs)}["runs/kf"]
    assert (run.state, run.progress) == ("", "folds done 2/2, fold_2 not planned"), (run.state, run.progress)


def test_a_fold_folder_outside_a_sets_plan_is_read_into_none_of_its_columns(outputs):
    """A fold_2 copied into a finished 2-fold set is not counted in its progress, but _read_run still read its
    metrics.csv: its 5 epochs were the set's `epochs`, its last epoch moved `best_epoch`, its time was in `seconds`
    and its best.pt among the set's checkpoints. Only the planned folds are read."""
    kf = outputs / "runs" / "kf"
    shutil.copytree(kf / "fold_1", kf / "fold_2")
    for k, f1 in enumerate(([0.7, 0.6, 0.3], [0.4, 0.6, 0.7], [0.1, 0.1, 0.1, 0.1, 1.0])):
        pd.DataFrame({"epoch": range(1, len(f1) + 1), "val_macro_f1": f1, "epoch_seconds": 1.0}).to_csv(
            kf / f"fold_{k}" / "metrics.csv", index=False)
    run = {r.name: r for r in find_runs(outputs)}["runs/kf"]
    assert (run.epochs, run.best_epoch, run.seconds) == (3, 2, 6.0), (run.epochs, run.best_epoch, run.seconds)
    assert run.checkpoints == [kf / "fold_0" / "best.pt", kf / "fold_1" / "best.pt"], run.checkpoints
    assert run.progress == "folds done 2/2, fold_2 not planned", run.progress


def test_a_filter_nothing_matches_says_how_many_runs_exist(outputs, tmp_path):
    """`imgcls runs --filter X` with no match printed '0 run(s) under outputs', exit 0, which reads as 'there are no
    runs'; the title now says how many runs there are and that none matched (and, with matches, how many of how
    many; the fixture's 6: 5 runs and an ensemble)."""
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "model=vit_huge"])
    title = " ".join(r.stdout.split())
    assert r.exit_code == 0, r.output
    assert f"none of the 6 runs and ensembles under {outputs} matches --filter model=vit_huge" in title, title
    assert "0 run" not in title
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "kind=run", "--filter", "val_macro_f1>0.6"])
    title = " ".join(r.stdout.split())
    assert (f"1 run of the 6 runs and ensembles under {outputs} matches --filter kind=run "
            f"--filter 'val_macro_f1>0.6'") in title, title
    r = CliRunner().invoke(app, ["runs", "report", str(outputs), "--filter", "model=vit_huge", "--out",
                                 str(tmp_path / "r.html")])
    assert r.exit_code == 0 and "(0 runs of the 6 runs and ensembles under" in " ".join(r.output.split()), r.output


def test_the_title_counts_what_it_lists_runs_ensembles_or_both(outputs, tmp_path):
    """`imgcls runs outputs/ensembles` was headed '2 run(s) under outputs/ensembles' though it listed ensembles; the
    title (and the report's line) counts what it lists: runs, ensembles, or runs and ensembles."""
    shutil.copytree(outputs / "ensembles" / "e1", outputs / "ensembles" / "e2")
    for where, said in (("ensembles", "2 ensembles under"), ("ensembles/e1", "1 ensemble under"),
                        ("runs", "4 runs under"), ("runs/best", "1 run under"), ("", "7 runs and ensembles under")):
        r = CliRunner().invoke(app, ["runs", str(outputs / where)])
        title = " ".join(r.stdout.split())
        assert r.exit_code == 0 and title.startswith(f"{said} {outputs / where}:"), title
        assert "run(s)" not in title
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "kind=ensemble"])
    assert f"2 ensembles of the 7 runs and ensembles under {outputs} match --filter" in " ".join(r.stdout.split())
    r = CliRunner().invoke(app, ["runs", "report", str(outputs / "ensembles"), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0 and "(2 ensembles)" in r.output, r.output
    assert "2 ensembles; val macro-F1" in (tmp_path / "r.html").read_text()


def test_python_run_runs_gives_the_cli_leaderboard_report_and_diff(outputs, tmp_path, capsys):
    """`imgcls runs` had no library function: its checks (a flag of another action, an unwritable path, no run)
    and its actions lived in the CLI. run_runs gives a Python caller the CLI's table, page and diff, and its
    one-line errors."""
    from imgcls.errors import UserError
    from imgcls.runs import RunsConfig, run_runs
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "kind=run", "--csv", str(tmp_path / "cli.csv")])
    assert r.exit_code == 0, r.output
    board = run_runs("table", [outputs], RunsConfig(filter=["kind=run"], csv=str(tmp_path / "py.csv")))
    assert (tmp_path / "py.csv").read_text() == (tmp_path / "cli.csv").read_text()
    assert list(board["name"]) == list(pd.read_csv(tmp_path / "cli.csv")["name"])
    page = run_runs("report", [outputs], RunsConfig(out=str(tmp_path / "p.html")))
    assert page == tmp_path / "p.html" and page.is_file()
    d = run_runs("diff", [outputs / "runs" / "best", outputs / "runs" / "mid"])
    assert ("loss", "focal", "ce") in d["config"] and "focal" in capsys.readouterr().out
    for action, paths, cfg, want in [
            ("report", [outputs], RunsConfig(csv=str(tmp_path / "x.csv")), "--csv acts only with imgcls runs"),
            ("table", [outputs], RunsConfig(out=str(tmp_path / "x.html")), "--out acts only with imgcls runs report"),
            ("diff", [outputs / "runs" / "best"], None, "runs diff takes two run folders"),
            ("table", [tmp_path / "nothing_here"], None, "is not a folder"),
            ("table", [outputs], RunsConfig(sort="speed"), "unknown --sort 'speed'")]:
        with pytest.raises(UserError, match=re.escape(want)):
            run_runs(action, paths, cfg)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.html").exists()


def test_run_runs_report_returns_its_page_absolute_and_says_it_as_named(outputs, tmp_path, monkeypatch, capsys):
    """run_runs('report') with a relative folder or out returned the page's path relative to the working folder
    (run_train's, build_ensemble's, run_predict's paths are absolute): a notebook that changed folder lost it.
    It is absolute; the info line still names it as given."""
    from imgcls.runs import RunsConfig, run_runs
    monkeypatch.chdir(tmp_path)
    for paths, cfg, named in [(["outputs"], None, "outputs/runs_report.html"),
                              (["outputs"], RunsConfig(out="p.html"), "p.html")]:
        page = run_runs("report", paths, cfg)
        assert page == tmp_path / named and page.is_absolute(), page
        assert f"wrote {named} (" in " ".join(capsys.readouterr().err.split())
        monkeypatch.chdir(outputs)
        assert page.is_file()
        monkeypatch.chdir(tmp_path)


def test_run_runs_given_one_path_instead_of_a_list_names_the_list_to_pass(outputs, tmp_path, monkeypatch):
    """run_runs("table", "outputs"), a notebook's natural call, iterated the string: "runs takes one folder (got 7:
    o u t p u t s)"; a Path was "'PosixPath' object is not iterable" from inside, and a one-letter folder name was
    read as the list of its letter. A path given as `paths` is a TypeError naming the list to pass (as
    build_ensemble's runs), before any run is read."""
    from imgcls.runs import run_runs
    monkeypatch.chdir(tmp_path)
    for action in ("table", "report", "diff"):
        for given in (str(outputs), outputs, "o"):
            with pytest.raises(TypeError, match=re.escape(f"run_runs' paths must be a list of folders (got the path "
                                                          f"{str(given)!r}); pass run_runs({action!r}, "
                                                          f"[{str(given)!r}")):
                run_runs(action, given)
        with pytest.raises(TypeError, match=re.escape(f"run_runs' paths must be a list of folders (got an int); pass "
                                                      f"run_runs({action!r}, ['outputs/runs/A'")):
            run_runs(action, 5)
    assert not (outputs / "runs_report.html").exists()
    assert run_runs("table", None).equals(run_runs("table"))       # None: none given, the default folder


def test_python_quiet_silences_run_runs_and_the_cli_quiet_keeps_its_table(outputs, capsys):
    """run_runs printed its leaderboard and diff even under console.set_quiet(True): a Python caller wants the
    returned table, not screen output. Under set_quiet(True) nothing is printed and the table and diff are returned;
    `imgcls runs --quiet` still prints the table, the command's output."""
    from imgcls import console
    from imgcls.runs import run_runs
    capsys.readouterr()
    console.set_quiet(True)
    try:
        board = run_runs("table", [outputs])
        d = run_runs("diff", [outputs / "runs" / "best", outputs / "runs" / "mid"])
    finally:
        console.set_quiet(False)
    said = capsys.readouterr()
    assert (said.out, said.err) == ("", "")
    assert "runs/best" in set(board["name"]) and ("loss", "focal", "ce") in d["config"]
    run_runs("table", [outputs])        # not quiet: printed, as `imgcls runs` prints it
    assert "runs/best" in capsys.readouterr().out
    for args in (["runs", str(outputs)], ["runs", "diff", str(outputs / "runs" / "best"), str(outputs / "runs" / "mid")]):
        r = CliRunner().invoke(app, args + ["--quiet"])
        assert r.exit_code == 0 and ("runs/best" in r.output if len(args) == 2 else "focal" in r.output), r.output
    assert not console.is_quiet()


def test_diff_of_ensembles_prints_their_weights_as_the_leaderboard_does(outputs):
    """`imgcls ensemble A B --method weighted --weights 2,1` records 0.6666666666666666 and 0.3333333333333333;
    `runs diff` of it and a soft ensemble printed those 16 digits in its options table (the leaderboard, 0.667)."""
    ens = outputs / "ensembles" / "thirds"
    ens.mkdir(parents=True)
    doc = yaml.safe_load((outputs / "ensembles" / "e1" / "spec.yaml").read_text())
    doc.update(name="thirds", method="weighted")
    for m, w in zip(doc["members"], (2 / 3, 1 / 3)):
        m["weight"] = w
    (ens / "spec.yaml").write_text(yaml.safe_dump(doc))
    shutil.copy(outputs / "ensembles" / "e1" / "oof_predictions.csv", ens)
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["runs", "diff", str(outputs / "ensembles" / "e1"), str(ens)])
    said = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    names = [m["name"] for m in doc["members"]]
    assert f"{names[0]}=0.667 {names[1]}=0.333" in said and "0.6666" not in said, said


def test_a_k_fold_set_before_its_first_fold_validated_is_a_k_fold_set_with_no_rows(outputs):
    """`imgcls runs` while a k-fold set trains its fold 0's first epoch (fold_0/ holds no metrics.csv yet) listed it
    as kind `run`, scored on `val (0)`; the set is a k-fold one by its config.yaml's --folds, and rows nothing was
    scored on are blank. One fold's folder read alone (its config.yaml repeats --folds) stays a run."""
    from imgcls.runs import read_run
    kf = outputs / "runs" / "starting"
    (kf / "fold_0").mkdir(parents=True)
    cfg = yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2, "folds": "all"})
    (kf / "config.yaml").write_text(cfg)
    (kf / "fold_0" / "config.yaml").write_text(cfg)
    df = leaderboard(find_runs(outputs), sort="name").set_index("name")
    assert df.loc["runs/starting", "kind"] == "k-fold"
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "name~starting"])
    row = next(line for line in r.stdout.splitlines() if "runs/starting" in line)
    assert "k-fold" in row and "(0)" not in row, r.stdout
    assert read_run(outputs / "runs" / "kf" / "fold_0", outputs).kind == "run"


def test_a_k_fold_set_s_task_names_its_class_count_before_its_last_fold(outputs):
    """`imgcls runs` while a k-fold set trained showed its task as a bare `label` (no class count) until its last
    fold wrote the out-of-fold predictions: `--filter "task=label (3)"` left it out and it read as another task.
    The count is known as the set starts (train records its classes in plan.json); a set started before that names
    them in its folds.json (what train wrote before plan.json) or its folds' validation predictions."""
    from imgcls.runs import read_run
    cfg = yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2, "folds": "0,1"})
    starting = outputs / "runs" / "starting"          # fold 0's first epoch: no fold has validated
    (starting / "fold_0").mkdir(parents=True)
    for d in (starting, starting / "fold_0"):
        (d / "config.yaml").write_text(cfg)
    (starting / "plan.json").write_text(json.dumps({"folds": [0, 1], "classes": CLASSES}))
    older = outputs / "runs" / "older"                # fold 0 done, fold 1 training, no classes in folds.json
    fake_run(older / "fold_0", "resnet10t", [("a", "a"), ("b", "b")], epochs=2)
    for d in (older, older / "fold_0"):
        (d / "config.yaml").write_text(cfg)
    (older / "folds.json").write_text(json.dumps({"folds": [0, 1]}))
    for run in (starting, older):
        r = read_run(run, outputs)
        assert r.kind == "k-fold" and r.task == "label (3)" and r.n_val == 0, (r.name, r.task)
    board = leaderboard(find_runs(outputs), filters=["task=label (3)"])
    assert {"runs/starting", "runs/older", "runs/kf"} <= set(board["name"])


def test_a_single_run_s_task_names_its_class_count_before_its_first_validation(outputs):
    """`imgcls runs` showed a single run's task as a bare `label` until its first epoch wrote val_predictions.csv:
    train records its classes in plan.json as it starts, for a single run as for a k-fold set; a run started before
    that has none to read and stays `label`. One fold's folder read alone reads its set's plan."""
    from imgcls.runs import read_run
    cfg = yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2})
    starting = outputs / "runs" / "single-starting"
    starting.mkdir(parents=True)
    (starting / "config.yaml").write_text(cfg)
    assert read_run(starting, outputs).task == "label"          # started before plan.json: nothing tells
    (starting / "plan.json").write_text(json.dumps({"folds": [], "classes": CLASSES}))
    r = read_run(starting, outputs)
    assert r.kind == "run" and r.task == "label (3)" and r.n_val == 0, r.task
    assert read_run(outputs / "runs" / "kf", outputs).kind == "k-fold"
    kfc = yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2, "folds": "0,1"})
    kf = outputs / "runs" / "kf-starting"
    (kf / "fold_0").mkdir(parents=True)
    for d in (kf, kf / "fold_0"):
        (d / "config.yaml").write_text(kfc)
    (kf / "plan.json").write_text(json.dumps({"folds": [0, 1], "classes": CLASSES}))
    assert read_run(kf / "fold_0", outputs).task == "label (3)"
    board = leaderboard(find_runs(outputs), filters=["task=label (3)"])
    assert "runs/single-starting" in set(board["name"])


def test_a_listing_whose_reader_closes_early_exits_141_quietly(outputs):
    """`imgcls runs | head -1` printed head's line and then exited 1 (rich's and click's answer to a closed pipe),
    which `set -o pipefail` scripts took for a failure. A reader that goes away is the reader's choice: the command
    exits 128 + SIGPIPE as coreutils do (`yes | head -1`), with no traceback or 'Exception ignored' line; a real
    error still exits with its own code and line."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": repo, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    for args, code in ((["runs", str(outputs)], 141), (["models", "list"], 141),      # rich's way; click's: --version
                       (["--version"], 141), (["runs", str(outputs / "nowhere")], 2)):
        read, write = os.pipe()
        os.close(read)          # the reader closes before the first line: no race with how much the pipe holds
        try:
            r = subprocess.run([sys.executable, "-m", "imgcls", *args], stdout=write, stderr=subprocess.PIPE,
                               text=True, env=env, timeout=120)
        finally:
            os.close(write)
        assert r.returncode == code, (args, r.returncode, r.stderr)
        assert ("error: " in r.stderr) == (code == 2) and "Traceback" not in r.stderr \
            and "Exception ignored" not in r.stderr, (args, r.stderr)


def test_runs_name_a_profile_run_s_classes_by_what_they_are(tmp_path, monkeypatch):
    """`imgcls runs diff` and the runs report's per-class chart named a profile run's classes 0..17 only, where
    train's, predict's and ensemble's reports say '4 (wear, female, 30-59)': the runs' (and an ensemble's) class
    meanings now come from their models' metadata (profiles.prediction_meanings), in diff's per-class table and on
    the chart; a class the runs charted together do not agree on (a mask run's '0') stays bare."""
    from conftest import make_tiny_run
    from matplotlib.axes import Axes

    from imgcls.runs import write_runs_report
    out = tmp_path / "outputs"
    rows = [("/r", f"{i}.png", str(i % 18)) for i in range(36)]
    for name, seed in (("p1", 0), ("p2", 1)):
        make_tiny_run(out / "runs" / name, multi=True, age_bands=[30, 60], val_rows=rows, seed=seed)
    ens = out / "ensembles" / "e"
    ens.mkdir(parents=True)
    (ens / "spec.yaml").write_text(yaml.safe_dump({
        "kind": "imgcls-ensemble", "name": "e", "method": "soft", "classes": [str(i) for i in range(18)],
        "members": [{"name": n, "run": f"../../runs/{n}", "weight": 0.5, "checkpoints": [f"../../runs/{n}/best.pt"]}
                    for n in ("p1", "p2")]}))
    pd.read_csv(out / "runs" / "p1" / "val_predictions.csv").rename(columns={"path": "key"}).to_csv(
        ens / "oof_predictions.csv", index=False)
    make_tiny_run(out / "runs" / "other_bands", multi=True, age_bands=[25, 50], val_rows=rows)
    d = diff_runs(out / "runs" / "p1", out / "runs" / "p2")
    assert dict(zip(d["per_class"]["class"], d["per_class"]["meaning"]))["4"] == "wear, female, 30-59"
    r = CliRunner().invoke(app, ["runs", "diff", str(out / "runs" / "p1"), str(out / "runs" / "p2")],
                           terminal_width=200)
    printed = r.output[r.output.index("per-class F1"):]
    titled = re.findall(r"│ \d+ \(\w+, (?:male|female), [^)]+\)", printed)     # titled as elsewhere; those
    assert len(titled) == (d["per_class"]["delta_f1"].round(4) != 0).sum() > 0, printed    # that changed
    d = diff_runs(out / "runs" / "p1", out / "runs" / "other_bands")      # '4': 30-59 there, 25-49 here
    assert dict(zip(d["per_class"]["class"], d["per_class"]["meaning"]))["4"] == ""
    runs = {r.name: r for r in find_runs(out)}
    from imgcls.runs import meanings_of
    assert runs["ensembles/e"].meanings is None                       # the leaderboard reads no checkpoint for it
    assert meanings_of(runs["ensembles/e"])["17"] == "not_wear, female, >=60"
    ticks, set_xticks = [], Axes.set_xticks
    monkeypatch.setattr(Axes, "set_xticks", lambda self, t, labels=None, **kw: (
        ticks.extend(labels or []), set_xticks(self, t, labels, **kw))[1])
    write_runs_report([r for n, r in runs.items() if n != "runs/other_bands"], tmp_path / "r.html", out)
    assert "4 (wear, female, 30-59)" in ticks and "0 (wear, male, <30)" in ticks
    ticks.clear()
    write_runs_report(list(runs.values()), tmp_path / "r.html", out)
    assert "4" in ticks and not any("wear" in t for t in ticks)


def test_runs_of_other_tasks_are_ranked_apart(outputs, monkeypatch):
    """`imgcls runs` ranked every run by macro-F1 in one list: a 2-class gender run (and a 3-class mask run) sat
    above the 18-class ensemble, as if their scores compared. Ranked by a score, each task's runs now come together,
    ranked among themselves, the task of the most classes first (a line parts them in the printed table, whose
    title says so), and the report draws one chart of curves and one per-class heat map per task."""
    from conftest import make_tiny_run
    rows = [("/r", f"{i}.png", str(i % 2)) for i in range(8)]
    g = make_tiny_run(outputs / "runs" / "g", classes=("0", "1"), target="gender", val_rows=rows, val_quality=1.0)
    (g / "config.yaml").write_text(yaml.safe_dump({"model": "test_efficientnet", "img_size": 32, "target": "gender"}))
    fake_run(outputs / "runs" / "t_mask", "resnet10t", [("a", "a"), ("b", "b"), ("c", "c")], target="mask")
    board = leaderboard(find_runs(outputs))
    tasks = board["task"].tolist()
    assert tasks == ["label (3)"] * 6 + ["mask (3)", "gender (2)"], board[["name", "task", "val_macro_f1"]]
    label = board[board["task"] == "label (3)"]["val_macro_f1"].tolist()
    assert label == sorted(label, reverse=True) and board["val_macro_f1"].iloc[-1] == 1.0
    by_name = leaderboard(find_runs(outputs), sort="name")       # not a ranking: as asked
    assert list(by_name["name"]) == sorted(by_name["name"])
    r = CliRunner().invoke(app, ["runs", str(outputs)], terminal_width=250)
    assert r.exit_code == 0 and "each task's runs ranked apart" in " ".join(r.output.split()), r.output
    pd.DataFrame({"epoch": [1, 2], "val_macro_f1": [0.9, 1.0]}).to_csv(g / "metrics.csv", index=False)
    from matplotlib.axes import Axes
    plotted, plot = [], Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **kw: (plotted.append((self, kw.get("label"))),
                                                               plot(self, *a, **kw))[1])
    r = CliRunner().invoke(app, ["runs", "report", str(outputs)])
    assert r.exit_code == 0, r.output
    html = (outputs / "runs_report.html").read_text()
    heats = re.findall(r'<img[^>]*alt="per-class F1 across runs: ([^"]*)"', html)
    assert heats == ["label (3)", "mask (3)", "gender (2)"], heats
    # the curves too: one chart per task (a 2-class gender run's macro-F1 was drawn beside the 3-class label runs')
    curves = re.findall(r'<img[^>]*alt="val macro-F1 by epoch: ([^"]*)"', html)
    assert curves == ["label (3)", "mask (3)", "gender (2)"], curves
    axes = {label: ax for ax, label in plotted}
    assert [label for ax, label in plotted if ax is axes["runs/g"]] == ["runs/g"]
    assert axes["runs/best"] is axes["runs/mid"] and axes["runs/t_mask"] not in (axes["runs/best"], axes["runs/g"])


def test_an_ensemble_of_mask_runs_is_of_the_mask_task(outputs):
    """An ensemble's task was always 'label (N)': a vote ensemble of two `train --target mask` runs read 'label (3)'
    and was ranked among the 3-class label runs. Its task is now its members' --target (their config.yaml)."""
    for n in ("m1", "m2"):
        fake_run(outputs / "runs" / n, "resnet10t", [("a", "a"), ("b", "b"), ("c", "c")], target="mask")
    ens = outputs / "ensembles" / "em"
    ens.mkdir(parents=True)
    (ens / "spec.yaml").write_text(yaml.safe_dump({
        "kind": "imgcls-ensemble", "name": "em", "method": "soft", "classes": CLASSES,
        "members": [member(n, 0.5) for n in ("m1", "m2")]}))
    shutil.copy(outputs / "ensembles" / "e1" / "oof_predictions.csv", ens / "oof_predictions.csv")
    task = dict(zip(*[leaderboard(find_runs(outputs))[c] for c in ("name", "task")]))
    assert task["ensembles/em"] == "mask (3)" and task["ensembles/e1"] == "label (3)"


def test_a_malformed_run_file_is_one_warning_and_the_other_runs_are_listed(tmp_path):
    """`imgcls runs` read a run's metrics.csv or val_predictions.csv that pandas could not parse as a missing one:
    the run's row went blank with nothing said, where the run's report, predict and ensemble refuse the file in one
    line (rundir.read_run_csv's). The listing, diff and report now say that line once per file, as a warning, and
    go on with every run."""
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    out = tmp_path / "outputs"
    for name in ("ok", "bad_metrics", "bad_preds"):
        fake_run(out / name, "resnet10t", good)
    bad = {"bad_metrics": out / "bad_metrics" / "metrics.csv", "bad_preds": out / "bad_preds" / "val_predictions.csv"}
    for f in bad.values():
        with open(f, "a") as fh:
            fh.write("1,2,3,4,5,6,7,8,9,10,11,12\n")        # a row with more fields than the header
    for args in (["runs", str(out)], ["runs", "diff", str(out / "bad_metrics"), str(out / "bad_preds")],
                 ["runs", "report", str(out)]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0 and "Traceback" not in r.output, (args, r.output)
        warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == 2, (args, r.output)
        for f in bad.values():
            said = [w for w in warnings if str(f) in w]
            assert len(said) == 1 and "has 12 field(s)" in said[0] and \
                "imgcls train wrote it: restore it from a backup, or train the run again" in said[0], (args, warnings)
    board = {n: f1 for n, f1 in zip(*leaderboard(find_runs(out), sort="name")[["name", "val_macro_f1"]].T.values)}
    assert set(board) == {"ok", "bad_metrics", "bad_preds"}
    assert board["ok"] == pytest.approx(1.0) and board["bad_metrics"] == pytest.approx(1.0)
    assert pd.isna(board["bad_preds"])             # its score: no predictions read, as without the file


def test_a_malformed_ensemble_file_says_the_ensemble_is_read_without_it(outputs):
    """A malformed oof_predictions.csv of an ensemble was said as a run's file: 'the run is read without it'. It
    is the ensemble's, which is listed without it."""
    f = outputs / "ensembles" / "e1" / "oof_predictions.csv"
    with open(f, "a") as fh:
        fh.write("1,2,3,4,5,6,7,8,9,10,11,12\n")        # a row with more fields than the header
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
    assert r.exit_code == 0 and len(warnings) == 1, r.output
    assert str(f) in warnings[0] and warnings[0].endswith(
        "imgcls ensemble wrote it: restore it from a backup, or build the ensemble again; the ensemble is read "
        "without it"), warnings[0]
    assert "ensembles/e1" in set(leaderboard(find_runs(outputs))["name"])


def test_a_metrics_csv_without_its_epoch_numbers_is_one_warning_and_the_other_runs_are_listed(tmp_path):
    """A metrics.csv that parses as CSV but has no epoch column, or an epoch (an epoch_seconds) that is not a
    number, crashed the whole listing (int() of 'x': a ValueError traceback; a KeyError for the column). It is
    malformed as one pandas cannot parse is: one warning naming the file, the run read without it, the others
    listed."""
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    out = tmp_path / "outputs"
    for name in ("ok", "no_epoch", "text_epoch", "text_seconds"):
        fake_run(out / name, "resnet10t", good)
    kf = out / "kf"
    for k in range(2):
        fake_run(kf / f"fold_{k}", "resnet10t", good[:2], epochs=2)
    (kf / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2,
                                                    "folds": "all"}))
    bad = {}
    for name, col, value, said in (("no_epoch", "epoch", None, "has no 'epoch' column"),
                                   ("text_epoch", "epoch", "x", "line 3: epoch 'x' is not a whole number"),
                                   ("text_seconds", "epoch_seconds", "abc", "line 4: epoch_seconds 'abc' is not a "
                                                                            "number"),
                                   ("kf/fold_1", "epoch", "2.5", "line 3: epoch '2.5' is not a whole number")):
        f = out / name / "metrics.csv"
        m = pd.read_csv(f, dtype=str)
        if value is None:
            m = m.drop(columns=[col])
        else:
            m.loc[len(m) - 1 if name != "text_epoch" else 1, col] = value
        m.to_csv(f, index=False)
        bad[f] = said
    r = CliRunner().invoke(app, ["runs", str(out)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(bad), r.output
    for f, said in bad.items():
        assert [w for w in warnings if str(f) in w] == [f"warning: the run's per-epoch metrics {f}"
                                                        f"{':' if 'line' in said else ''} {said}; imgcls train "
                                                        f"wrote it: restore it from a backup, or train the run "
                                                        f"again; the run is read without it"], warnings
    board = leaderboard(find_runs(out), sort="name").set_index("name")
    assert set(board.index) == {"ok", "no_epoch", "text_epoch", "text_seconds", "kf"}
    assert board.loc["ok", "epochs"] == 3 and board.loc["ok", "seconds"] == pytest.approx(6.0)
    for name in ("no_epoch", "text_epoch", "text_seconds"):      # scored all the same, no epochs read
        assert pd.isna(board.loc[name, "epochs"]) and board.loc[name, "val_macro_f1"] == pytest.approx(1.0)
    assert board.loc["kf", "epochs"] == 2 and board.loc["kf", "seconds"] == pytest.approx(4.0)  # fold_0's alone


def test_a_run_whose_metrics_csv_is_malformed_or_gone_has_its_epochs_done_not_known(outputs):
    """A run whose metrics.csv was malformed or gone (no last.pt) was listed 'stopped 0/3': how far it got is not
    known, not zero. It reads '?/3' (stopped where last.pt says so); a run stopped in its first epoch (config.yaml
    alone) is stopped at 0, and a k-fold set names the fold it does not know."""
    import torch
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    runs_dir = outputs / "runs"
    for name in ("gone", "malformed", "killed_malformed"):
        fake_run(runs_dir / name, "resnet10t", good)
    (runs_dir / "gone" / "metrics.csv").unlink()
    for name in ("malformed", "killed_malformed"):
        with open(runs_dir / name / "metrics.csv", "a") as fh:
            fh.write("1,2,3,4,5,6,7,8,9,10,11,12\n")        # a row with more fields than the header
    torch.save({"state_dict": {}, "meta": {}, "train_state": {"finished": False, "epoch": 1}},
               runs_dir / "killed_malformed" / "last.pt")
    (runs_dir / "first_epoch").mkdir()
    (runs_dir / "first_epoch" / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32,
                                                                          "epochs": 3}))
    kf = runs_dir / "kf_bad"
    fake_run(kf / "fold_0", "resnet10t", good[:2], epochs=2)
    fake_run(kf / "fold_1", "resnet10t", good[2:], epochs=1)
    (kf / "fold_1" / "metrics.csv").write_text("epoch,val_macro_f1\nx,0.5\n")
    for d in (kf, kf / "fold_0", kf / "fold_1"):
        (d / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2,
                                                       "folds": "0,1,2"}))
    board = leaderboard(find_runs(outputs), sort="name")
    got = {n: (s, p) for n, s, p in zip(board["name"], board["state"], board["progress"])}
    assert got["runs/gone"] == ("", "?/3") and got["runs/malformed"] == ("", "?/3")
    assert got["runs/killed_malformed"] == ("stopped", "?/3")
    assert got["runs/first_epoch"] == ("stopped", "0/3")          # a real 0
    assert got["runs/kf_bad"] == ("stopped", "folds done 1/3, fold_1 ?/2")
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and re.search(r"runs/gone\W+run\W+label \(3\)\W+resnet10t\W+32\W+\?/3\W", out), out
    assert "stopped ?/3" in out and "stopped 0/3" in out and "'?/6': its epochs done not known" in out


def test_a_run_whose_metrics_csv_is_malformed_or_gone_has_its_epochs_done_from_last_state(outputs, monkeypatch):
    """A run whose metrics.csv was malformed or gone read '?/3' although its last.pt's last_state.json records the
    epoch it was written after. That record tells the epochs done now, read without torch (last.pt here is no
    checkpoint at all); one older than its last.pt (a crash between the two writes) is not trusted: '?/3'."""
    import os

    import imgcls.train.checkpoint as checkpoint
    from imgcls.train.rundir import record_last_state
    read = []           # the folders whose last.pt was read with torch
    for name in ("saved_finished", "saved_epoch"):
        monkeypatch.setattr(checkpoint, name, lambda path: read.append(path.parent.name))
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    runs_dir = outputs / "runs"
    for name, epochs, done, finished in (("gone_done", 3, 3, True), ("malformed_stopped", 3, 2, False),
                                         ("gone_early", 10, 4, True), ("gone_stale", 3, 3, True)):
        fake_run(runs_dir / name, "resnet10t", good, epochs=epochs)
        (runs_dir / name / "last.pt").write_bytes(b"not a checkpoint")
        record_last_state(runs_dir / name / "last.pt", done, finished)
    (runs_dir / "gone_early" / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32,
                                                                         "epochs": 10, "early_stop": 2}))
    for name in ("gone_done", "gone_early", "gone_stale"):
        (runs_dir / name / "metrics.csv").unlink()
    with open(runs_dir / "malformed_stopped" / "metrics.csv", "a") as fh:
        fh.write("1,2,3,4,5,6,7,8,9,10,11,12\n")        # a row with more fields than the header
    stale = runs_dir / "gone_stale" / "last.pt"
    later = (runs_dir / "gone_stale" / "last_state.json").stat().st_mtime_ns + 10**9
    os.utime(stale, ns=(later, later))
    board = leaderboard(find_runs(outputs), sort="name")
    got = {n: (s, p) for n, s, p in zip(board["name"], board["state"], board["progress"])}
    assert got["runs/gone_done"] == ("", "3/3") and got["runs/malformed_stopped"] == ("stopped", "2/3")
    assert got["runs/gone_early"] == ("", "4/10, early stop")
    assert got["runs/gone_stale"] == ("", "?/3") and read == ["gone_stale"]


def test_a_run_not_known_to_have_finished_is_no_bare_count_and_the_notes_say_blank_is_not_known(outputs):
    """A run with --early-stop whose last.pt is gone, 4 of its 10 epochs in metrics.csv and no values of its
    --metric there (train's early-stop rule cannot tell), is not known to have
    finished (an early stop) or stopped: its state is blank, as a finished run's, and the table's epochs cell
    read a bare '4', which its caption says is a finished run's. It reads '4/10', and the caption says so; the
    report's subtitle said a blank state is a finished run's, and says now that it may be not known."""
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    fake_run(outputs / "runs" / "early_nolast", "resnet10t", good, epochs=4)
    (outputs / "runs" / "early_nolast" / "config.yaml").write_text(yaml.safe_dump(
        {"model": "resnet10t", "img_size": 32, "epochs": 10, "early_stop": 2, "metric": "loss"}))
    metrics_csv = outputs / "runs" / "early_nolast" / "metrics.csv"       # no val loss: the rule cannot tell
    pd.read_csv(metrics_csv).drop(columns="val_loss").to_csv(metrics_csv, index=False)
    r = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["runs", str(outputs)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and re.search(r"runs/early_nolast\W+run\W+label \(3\)\W+resnet10t\W+32\W+4/10\W", out), out
    assert re.search(r"runs/best\W+run\W+label \(3\)\W+resnet10t\W+32\W+4\W", out)     # finished: bare
    assert ("'4/10' alone: not known whether it finished (an early stop) or stopped (its last.pt gone, and its "
            "metrics.csv without the values of its --metric)") in out
    # the report's state column is blank for it too: its subtitle said "blank for a finished run"
    r = CliRunner().invoke(app, ["runs", "report", str(outputs)])
    page = " ".join((outputs / "runs_report.html").read_text().split())
    assert r.exit_code == 0 and "state: blank for a finished run, an ensemble, or a run not known to have finished " \
        "or stopped (progress 4/10 alone: an early stop could have ended it, its last.pt gone and its metrics.csv " \
        "without the values of its --metric; or ?/6)" in page


def test_a_kfold_set_s_report_lists_its_folds_by_number(tmp_path):
    """A k-fold set's report.html listed its folds by their folders' names as text: with 10 folds or more, fold 10
    came between fold 1 and fold 2. They are in fold order now (run_names.fold_dirs)."""
    import html

    from imgcls.train.report import write_run_report
    kf = tmp_path / "runs" / "kf"
    for k in range(11):
        fake_run(kf / f"fold_{k}", "resnet10t", [("a", "a"), ("b", "b")], epochs=2, plots=False)
    (kf / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2,
                                                    "folds": "all", "plots": False}))
    pd.concat([pd.read_csv(kf / f"fold_{k}" / "val_predictions.csv") for k in range(11)]).to_csv(
        kf / "val_predictions.csv", index=False)
    page = html.unescape(write_run_report(kf).read_text())
    listed = [int(k) for k in re.findall(r"fold_(\d+)/report\.html", page)]
    assert listed == list(range(11)), listed


def test_a_kfold_set_s_report_lists_no_fold_folder_outside_its_plan(outputs):
    """A fold_2 copied into a finished 2-fold set was a row of its report.html's fold table (read by
    run_names.fold_dirs: every fold_<k> folder), though `imgcls runs` counts it in none of the set's columns. The
    table lists the set's planned folds (rundir.set_fold_dirs)."""
    import html

    from imgcls.train.report import write_run_report
    kf = outputs / "runs" / "kf"
    shutil.copytree(kf / "fold_1", kf / "fold_2")
    page = html.unescape(write_run_report(kf).read_text())
    listed = [int(k) for k in re.findall(r"fold_(\d+)/report\.html", page)]
    assert listed == [0, 1], listed


def test_a_folder_of_a_kfold_set_that_is_no_fold_is_not_read_as_one(tmp_path):
    """A folder in a k-fold set named fold_<something> that is not fold_<number> (a user's fold_old copy) was read
    as a fold by the readers that matched fold_*: find_checkpoints (predict, export, ensemble) ended in a ValueError
    traceback on it (its fold number read with int()), and a fold_1_old copy was one more model to predict with.
    Every reader takes run_names.fold_dirs now: the fold_<k> folders, by fold number."""
    from imgcls.train.rundir import find_checkpoints, validation_files
    kf = tmp_path / "runs" / "kf"
    for k in (0, 1, 10):
        fake_run(kf / f"fold_{k}", "resnet10t", [("a", "a"), ("b", "b")], epochs=2)
        (kf / f"fold_{k}" / "best.pt").write_bytes(b"")        # found by its name; never read
    for other in ("fold_old", "fold_1_old"):
        shutil.copytree(kf / "fold_1", kf / other)
    (kf / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 2,
                                                    "folds": "all"}))
    (kf / "oof_score.json").write_text(json.dumps({"folds": [0, 1, 10]}))
    assert find_checkpoints(kf) == [kf / f"fold_{k}" / "best.pt" for k in (0, 1, 10)]
    assert validation_files(kf) == [kf / f"fold_{k}" / "val_predictions.csv" for k in (0, 1, 10)]
    run = {r.name: r for r in find_runs(tmp_path / "runs")}["kf"]
    assert run.checkpoints == [kf / f"fold_{k}" / "best.pt" for k in (0, 1, 10)]
    assert run.progress == "folds done 3/3", run.progress


def test_diff_of_a_run_rebuilt_on_a_copy_of_the_data_elsewhere_says_same_rows(outputs):
    """A submission rebuilt a week later in another folder (the same pipeline, the same --seed: its images under
    another root) validates on the very images the first run did: runs diff said "scored on different images ...
    not a like-for-like comparison" and "(other rows)" because it keyed each row by its absolute root. The rows are
    each image's path within its root (a copy of the data elsewhere has the same, as tune's rows
    digest says); other paths are still other rows."""
    runs = outputs / "runs"
    good = [("a", "a"), ("b", "b"), ("c", "c"), ("a", "a")]
    fake_run(runs / "rebuilt", "resnet10t", good, epochs=4, seconds=5.0, name="rebuilt")
    v = pd.read_csv(runs / "rebuilt" / "val_predictions.csv")
    v.assign(root="/week2/data/processed").to_csv(runs / "rebuilt" / "val_predictions.csv", index=False)
    assert diff_runs(runs / "best", runs / "rebuilt")["same_rows"]
    r = CliRunner().invoke(app, ["runs", "diff", str(runs / "best"), str(runs / "rebuilt")])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and re.search(r"scored on\W+val \(4\)\W+val \(4\)\W+same rows", out), out
    assert "(other rows)" not in out and "different images" not in out, out
    # two ensembles of such runs: their out-of-fold keys are root/path, each under its own folder
    for name, root in (("e_a", "/week1/data"), ("e_b", "/week2/data")):
        ens = outputs / "ensembles" / name
        ens.mkdir(parents=True)
        (ens / "spec.yaml").write_text(yaml.safe_dump({
            "kind": "imgcls-ensemble", "name": name, "method": "soft", "classes": CLASSES, "scores": {},
            "members": [member("best", 0.5), member("mid", 0.5)]}))
        v.assign(key=[f"{root}/processed/{p}" for p in v["path"]]).drop(columns=["root", "path", "fold"]).to_csv(
            ens / "oof_predictions.csv", index=False)
    assert diff_runs(outputs / "ensembles" / "e_a", outputs / "ensembles" / "e_b")["same_rows"]
    # other file names under another root are other images
    fake_run(runs / "other", "resnet10t", good[:3], name="other")
    pd.read_csv(runs / "other" / "val_predictions.csv").assign(root="/week2/data/processed").to_csv(
        runs / "other" / "val_predictions.csv", index=False)
    assert not diff_runs(runs / "best", runs / "other")["same_rows"]


def test_a_trained_run_shows_the_scores_train_recorded_equal_to_re_scoring_its_predictions(tmp_path, monkeypatch):
    """`imgcls runs` re-scored every run from its val_predictions.csv with sklearn (~1.3 s of its start-up, more
    than reading the runs) although train records those very scores: a run's metrics.csv row of its best epoch and
    per_class.csv, a k-fold set's oof_score.json and per_class.csv. They are shown, the same numbers to the last
    digit as re-scoring the predictions gives; only a run without them is re-scored."""
    from conftest import make_image_folder
    from imgcls import manifest as mf
    from imgcls import metrics
    from imgcls.train import TrainConfig, run_train
    df = mf.load(make_image_folder(tmp_path / "raw", {"a": 6, "b": 6, "c": 5}, size=(24, 24)))
    df["fold"] = np.arange(len(df)) % 2
    mf.write(df, tmp_path / "splits.csv")
    tiny = dict(src=str(tmp_path / "splits.csv"), out=str(tmp_path / "outputs"), model="test_resnet", img_size=16,
                batch_size=8, workers=0, device="cpu", pretrained=False, plots=False, aug="none")
    run_train(TrainConfig(**tiny, name="single", epochs=2, val_split=0.4))
    run_train(TrainConfig(**tiny, name="kf", epochs=1, folds="all"))
    expected = {}
    for name in ("single", "kf"):
        v = pd.read_csv(tmp_path / "outputs" / name / "val_predictions.csv", dtype={"label": str, "pred": str})
        classes = [c[2:] for c in v.columns if c.startswith("p_")]
        expected[name] = (metrics.scores(v["label"], v["pred"], classes), metrics.per_class(v["label"], v["pred"],
                                                                                            classes))

    def rescored(*a, **k):
        raise AssertionError("re-scored a run that records its scores")
    monkeypatch.setattr(metrics, "scores", rescored)
    monkeypatch.setattr(metrics, "per_class", rescored)
    runs = {r.name: r for r in find_runs(tmp_path / "outputs")}
    for name, (s, pc) in expected.items():
        r = runs[name]
        assert (r.val_macro_f1, r.val_acc, r.n_val) == (s["macro_f1"], s["accuracy"], s["n"]), name
        pd.testing.assert_frame_equal(r.per_class, pc)
    assert runs["kf"].scored_on == "OOF" and runs["single"].scored_on == "val"


def test_a_score_record_that_is_not_of_the_saved_predictions_is_not_shown(outputs):
    """A per_class.csv whose class counts are not those of the run's val_predictions.csv (a file copied from another
    run, an epoch saved between the two writes) is no record of them: the predictions are re-scored."""
    mid = outputs / "runs" / "mid"      # a,a / b->a / c,c / a,a: macro-F1 0.6, accuracy 0.75
    pd.DataFrame({"best_epoch": 3, "class": CLASSES, "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": [2, 1, 1],
                  "predicted": [2, 1, 1]}).to_csv(mid / "per_class.csv", index=False)
    m = pd.read_csv(mid / "metrics.csv")
    m.assign(val_macro_f1=1.0, val_acc=1.0).to_csv(mid / "metrics.csv", index=False)
    run = {r.name: r for r in find_runs(outputs)}["runs/mid"]
    assert run.val_macro_f1 == pytest.approx(0.6) and run.val_acc == pytest.approx(0.75) and run.n_val == 4
    assert list(run.per_class["f1"]) == pytest.approx([0.8, 0.0, 1.0])


def test_a_not_equal_filter_keeps_only_rows_that_have_the_option(outputs):
    """`--filter "lr!=0.001"` listed every ensemble (and every run recording no lr): a row without the value counted
    as 'not 0.001'. As in MLflow's search and SQL, a row without the column's value or the option matches no filter,
    != included; `~` likewise."""
    runs = find_runs(outputs)
    assert list(leaderboard(runs, filters=["lr!=0.001"])["name"]) == ["tune/s1/trial_0000"]
    assert list(leaderboard(runs, filters=["loss!=ce"])["name"]) == ["runs/best"]          # a text option
    assert "ensembles/e1" not in set(leaderboard(runs, filters=["img_size!=64"])["name"])  # a column it lacks
    assert "ensembles/e1" not in set(leaderboard(runs, filters=["img_size~3"])["name"])
    assert "ensembles/e1" in set(leaderboard(runs, filters=["state!=running"])["name"])     # blank is a value
    cfg = outputs / "runs" / "low" / "config.yaml"        # an option recorded as null (its default: none) has it
    cfg.write_text(cfg.read_text() + "tracker: null\n")
    # best and mid, records train wrote whole (weights_source), have every option: tracker at its default ([])
    kept = {"runs/low", "runs/best", "runs/mid"}
    assert set(leaderboard(find_runs(outputs), filters=["tracker!=mlflow"])["name"]) == kept
    r = CliRunner().invoke(app, ["runs", "--help"], env={"COLUMNS": "200"})
    assert "matches no --filter, != included" in " ".join(r.output.replace("│", " ").split()), r.output


def test_diff_says_a_run_that_is_not_finished_is_not(outputs):
    """`runs diff` showed a run stopped after 2 of its 6 epochs, or one a train holds now, with a bare epochs count
    ('2', '3') beside a finished run's, its score of its best epoch so far read as final; the leaderboard says
    'stopped 2/6', 'running 3/3'. The diff's epochs row says it as the leaderboard does (epochs_label)."""
    from imgcls.train.rundir import RunLock
    runs = outputs / "runs"
    fake_run(runs / "ctrlc", "resnet10t", [("a", "a"), ("b", "b"), ("c", "c"), ("a", "b")], epochs=2)
    (runs / "ctrlc" / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 6}))
    r = CliRunner().invoke(app, ["runs", "diff", str(runs / "best"), str(runs / "ctrlc")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and re.search(r"│ epochs +│ +4 │ +stopped 2/6 │ +-2 │", r.output), r.output
    if RunLock.held(outputs) is None:
        return      # no /proc/locks here
    with RunLock(runs / "mid"):
        r = CliRunner().invoke(app, ["runs", "diff", str(runs / "mid"), str(runs / "best")], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and re.search(r"│ epochs +│ +running 3/3 │ +4 │ +\+1 │", r.output), r.output


def test_a_folder_whose_yaml_is_not_utf8_is_read_as_no_output_not_a_traceback(tmp_path):
    """outputs.read_yaml promised {} for an unreadable file but let UnicodeDecodeError through: output_kind (every
    step's check of its --out and inputs) failed with a traceback on a spec.yaml / config.yaml in another encoding."""
    from imgcls.outputs import output_kind, read_yaml
    (tmp_path / "spec.yaml").write_bytes("kind: imgcls-ensemble\nname: caf\xe9\n".encode("latin-1"))
    assert read_yaml(tmp_path / "spec.yaml") == {}
    assert output_kind(tmp_path) is None


@pytest.mark.parametrize("bad", ["members: 3", "members: [3, x]", "classes: 5", "method: median",
                                 "members: [{name: best, run: ., checkpoints: [best.pt], weight: heavy}]"])
def test_a_hand_edited_spec_yaml_is_one_warning_naming_it_and_the_other_runs_are_listed(outputs, bad):
    """A hand-edited spec.yaml crashed `imgcls runs` with a traceback (TypeError: 'int' object is not iterable for
    `members: 3`, `members: [3, x]`, `classes: 5`): it is read by load_spec's checks (ensemble.config.check_spec), a
    malformed one said in one warning naming the file and what is wrong, the ensemble left out, the others listed."""
    spec = outputs / "ensembles" / "e1" / "spec.yaml"
    doc = yaml.safe_load(spec.read_text())
    doc.update(yaml.safe_load(bad))
    spec.write_text(yaml.safe_dump(doc))
    r = CliRunner().invoke(app, ["runs", str(outputs)], terminal_width=300)
    assert r.exit_code == 0 and r.exception is None, (r.output, r.exception)
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and str(spec) in warnings[0], r.output
    assert warnings[0].endswith("; the ensemble is not listed"), warnings[0]
    assert "runs/best" in r.output and "ensembles/e1" not in r.output.replace(str(spec), "")
    r = CliRunner().invoke(app, ["runs", "diff", str(spec.parent), str(outputs / "runs" / "best")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and str(spec) in " ".join(r.output.split()), r.output


@pytest.mark.parametrize("text", [b"model: [resnet10t\n", b"- model\n- resnet10t\n", b"model: \xff\xfe\n"])
def test_an_unreadable_config_yaml_is_one_warning_naming_it_and_the_run_is_listed(outputs, text):
    """A run's config.yaml that is no YAML mapping (broken YAML, a list, not UTF-8) was read as empty without a
    word: the run listed with a blank model and no options (not UTF-8: a UnicodeDecodeError traceback). It is now one
    warning naming the file, as runs says its other malformed files, and the run is listed without it."""
    config = outputs / "runs" / "mid" / "config.yaml"
    config.write_bytes(text)
    r = CliRunner().invoke(app, ["runs", str(outputs)], terminal_width=300)
    assert r.exit_code == 0 and r.exception is None, (r.output, r.exception)
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and str(config) in warnings[0], r.output
    assert warnings[0].endswith("imgcls train wrote it: restore it from a backup, or train the run again; the run "
                                "is read without it"), warnings[0]
    assert "runs/mid" in set(leaderboard(find_runs(outputs))["name"]) and "runs/best" in r.output


@pytest.mark.parametrize("text", [b"kind: imgcls-ensemble\nname: \xff\n", b"kind: imgcls-ensemble\nmembers: [\n"])
def test_a_spec_yaml_that_is_no_readable_yaml_is_one_warning_naming_it(outputs, text):
    """An ensemble's spec.yaml that is not UTF-8 crashed `imgcls runs` (UnicodeDecodeError traceback), and one of
    broken YAML was passed over without a word (outputs.read_yaml's {}): both are load_spec's line (read_spec_doc)
    in one warning naming the file, and the other runs are listed."""
    spec = outputs / "ensembles" / "e1" / "spec.yaml"
    spec.write_bytes(text)
    r = CliRunner().invoke(app, ["runs", str(outputs)], terminal_width=300)
    assert r.exit_code == 0 and r.exception is None, (r.output, r.exception)
    warnings = [line for line in r.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and f"{spec} is not a readable YAML ensemble spec" in warnings[0], r.output
    assert "runs/best" in r.output


def test_diff_shows_an_unset_and_a_yes_no_option_as_config_yaml_writes_them(tmp_path):
    """`runs diff` of a run (folds unset: config.yaml's `folds: null`) and a k-fold set showed `folds  None | all`,
    and `pretrained  True | False`: Python's spellings, which neither the user typed nor config.yaml holds (nor
    --filter matches). Both are shown as config.yaml writes them; the leaderboard's changed column too."""
    a = fake_run(tmp_path / "runs" / "a", "resnet10t", [("a", "a")], folds=None, pretrained=True)
    b = fake_run(tmp_path / "runs" / "b", "resnet10t", [("a", "a")], folds="all", pretrained=False)
    d = diff_runs(a, b)
    assert ("folds", "null", "all") in d["config"] and ("pretrained", "true", "false") in d["config"], d["config"]
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "None" not in r.output and "False" not in r.output, r.output
    assert "pretrained=false" in find_runs(tmp_path)[1].changed.split()


def _diff_of_one_row_moved(tmp_path, classes):
    """`imgcls runs diff A B` of two fake runs of two rows a class, B taking k00's first row for k01: F1 differs in
    those two classes only. The diff's result, A, and the rows' labels and B's predictions."""
    truth = [c for c in classes for _ in range(2)]
    guess = [classes[1] if i == 0 else t for i, t in enumerate(truth)]          # k00's first row taken for k01
    a = fake_run(tmp_path / "a", "resnet10t", list(zip(truth, truth)), classes=classes)
    b = fake_run(tmp_path / "b", "resnet10t", list(zip(truth, guess)), classes=classes)
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], terminal_width=200)
    assert r.exit_code == 0, r.output
    return r, a, truth, guess


def test_diff_says_the_classes_past_its_top_ten_that_did_not_change_are_unchanged(tmp_path):
    """`imgcls runs diff A B` of two runs whose F1 differed in 2 of 17 classes ended its per-class table with '7 more
    class(es) changed by at most 0.0000': they did not change. Such classes are said unchanged; a rest that did
    change keeps its 'changed by at most' line (test_diff_prints_the_per_class_f1_the_largest_change_first)."""
    classes = [f"k{i:02d}" for i in range(13)]
    r = _diff_of_one_row_moved(tmp_path, classes)[0]
    said = " ".join(r.output.split())
    assert "11 more class(es) unchanged" in said and "changed by at most" not in said, r.output


def test_diff_prints_its_captions_unfolded_under_a_narrow_options_table(outputs):
    """`imgcls runs diff A B` of runs differing in one option printed the options table's caption folded to the
    table's width, a column of 23 characters ('also differ in where / ' ... 'how they ran, not in ' ... 'what they
    learned: name'), and the metrics table's title alike. Each is one line where the terminal has room, as the
    per-class table's caption already was."""
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "best"), str(outputs / "runs" / "mid")],
                           terminal_width=200)
    assert r.exit_code == 0, r.output
    lines = [line.strip() for line in r.output.splitlines()]
    assert "also differ in where / how they ran, not in what they learned: name, weights_source" in lines, r.output
    assert "metrics (val macro-F1 over every class, from the saved validation predictions)" in lines, r.output


def test_a_filter_nothing_matches_prints_its_line_without_an_empty_table(outputs):
    """`imgcls runs outputs/runs --filter model=resnet10t --filter "val_macro_f1>0.5"` (README's example) matching
    none printed its line, then the leaderboard's header with no row and the 12-line legend of its columns. The
    line alone is printed."""
    r = CliRunner().invoke(app, ["runs", str(outputs), "--filter", "model=vit_huge"], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert f"none of the 6 runs and ensembles under {outputs} matches --filter model=vit_huge" in r.stdout, r.stdout
    assert "\u250f" not in r.stdout and "epochs: done" not in r.stdout, r.stdout


def test_diff_does_not_call_classes_one_run_did_not_score_unchanged(tmp_path):
    """The classes past runs diff's top ten were all said 'unchanged' where those that did not change had a change
    of 0, though some of them had no validation row in one run (no F1 there, nothing compared): such classes are
    counted apart."""
    classes = [f"k{i:02d}" for i in range(14)]
    truth = [c for c in classes for _ in range(2)]
    guess = [classes[1] if i == 0 else t for i, t in enumerate(truth)]          # k00's first row taken for k01
    a = fake_run(tmp_path / "a", "resnet10t", list(zip(truth, truth)), classes=classes)
    kept = [(t, g) for t, g in zip(truth, guess) if t not in ("k12", "k13")]    # B: no val rows of k12, k13
    b = fake_run(tmp_path / "b", "resnet10t", kept, classes=classes)
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(b)], terminal_width=200)
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert re.findall(r"│ (k\d\d) ", r.output) == ["k00", "k01", "k12", "k13"], r.output   # k12, k13: '–'
    assert "10 more class(es) unchanged" in said, r.output


def test_diff_lists_no_class_whose_f1_change_rounds_to_zero(tmp_path, capsys):
    """`imgcls runs diff A B` of two runs whose F1 differed in 2 of 10 classes listed all 10, eight of them with a
    change of +0.0000, before its line of the rest. A class whose change rounds to zero at the table's 4 decimals
    is counted among the unchanged under the table, not listed; a class one run did not score is still listed
    ('–'); two runs of the same per-class F1 print one line, not a table of +0.0000 rows."""
    classes = [f"k{i:02d}" for i in range(10)]
    r, a, truth, guess = _diff_of_one_row_moved(tmp_path, classes)
    out = r.output[r.output.index("per-class F1"):]
    assert re.findall(r"│ (k\d\d) ", out) == ["k00", "k01"] and "+0.0000" not in out, out
    assert "8 more class(es) unchanged" in " ".join(out.split()), out
    # B without validation rows of k09: listed with '–', not counted as unchanged
    c = fake_run(tmp_path / "c", "resnet10t", [(t, g) for t, g in zip(truth, guess) if t != "k09"], classes=classes)
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(c)], terminal_width=200)
    out = r.output[r.output.index("per-class F1"):]
    assert re.findall(r"│ (k\d\d) ", out) == ["k00", "k01", "k09"], out
    assert "7 more class(es) unchanged" in " ".join(out.split()), out
    # the same predictions: no table of ten +0.0000 rows
    same = fake_run(tmp_path / "same", "resnet10t", list(zip(truth, truth)), classes=classes)
    r = CliRunner().invoke(app, ["runs", "diff", str(a), str(same)], terminal_width=200)
    assert r.exit_code == 0, r.output
    out = r.output[r.output.index("per-class F1"):]
    assert "│ k0" not in out and "every class unchanged (10 classes)" in " ".join(out.split()), out
    # past the top: those that changed less, the unchanged and those not compared, each counted
    from imgcls.runs import _print_per_class
    capsys.readouterr()
    _print_per_class(diff_runs(a, c)["per_class"], top=1)
    said = " ".join(capsys.readouterr().out.split())
    assert "9 more class(es): 1 changed by at most 0.2000, 7 unchanged, 1 not compared (no validation rows of " \
           "the class in one run)" in said, said


def test_the_leaderboard_in_a_narrow_terminal_leaves_columns_out_rather_than_fold_every_cell(outputs, monkeypatch):
    """`imgcls runs` in an 80-column terminal printed all twelve columns 4 to 6 characters wide, every cell folded
    ('0.77' over '95', 'runs' / '/sto' / 'pped', 'options changed' 30 lines a row). Columns are left out, the least
    needed first, until the rest fit without folding a score, and the caption names those left out; a terminal wide
    enough keeps them all."""
    board, out = _leaderboard_at(80, outputs, monkeypatch)
    assert max(len(line) for line in out.splitlines()) <= 80, out
    for name, f1 in zip(board["name"], board["val_macro_f1"]):
        assert re.search(rf"│ {re.escape(name)}\s+│.*│\s+{f1:.4f} │", out), (name, out)   # one line, unfolded
    said = " ".join(out.split())
    assert re.search(r"left out to fit the terminal's 80 columns: kind, [^;]*best ep, [^;]*time", said), out
    assert "scored" in out.split("┡")[0], out        # the rows each score is of: never left out
    out = _leaderboard_at(300, outputs, monkeypatch)[1]
    assert "left out" not in out and "options changed" in out, out


def _leaderboard_at(width: int, outputs, monkeypatch):
    """`imgcls runs`' table of `outputs` on a terminal `width` columns wide: (the board, what it printed)."""
    import io

    from rich.console import Console

    from imgcls import console
    from imgcls.runs import run_runs
    screen = io.StringIO()
    monkeypatch.setattr(console, "results", Console(file=screen, force_terminal=True, width=width, highlight=False,
                                                    markup=False, color_system=None))
    board = run_runs("table", [outputs])
    return board, screen.getvalue()


def test_the_leaderboard_under_65_columns_with_a_stopped_k_fold_set_folds_no_name_nor_score(outputs, monkeypatch):
    """Under about 65 columns even the five columns an 80-column terminal keeps did not fit: rich folded every
    cell ('runs/bes' / 't', 'tf_effici' / 'entnet_li' / 'te0', a stopped k-fold set's 'stopped folds done 0/5,
    fold_0 2/6' over five lines beside them). The model column is left out last (the run's name names it), so a
    60-column terminal shows each name and score whole, the set's progress folded at its words."""
    kf = outputs / "runs" / "kf"
    (kf / "oof_score.json").unlink()            # stopped after fold 0's second of 6 epochs, of 5 folds
    (kf / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32, "epochs": 6,
                                                    "folds": "all"}))
    (kf / "plan.json").write_text(json.dumps({"folds": [0, 1, 2, 3, 4], "classes": CLASSES}))
    board, out = _leaderboard_at(60, outputs, monkeypatch)
    assert max(len(line) for line in out.splitlines()) <= 60, out
    for name, f1 in zip(board["name"], board["val_macro_f1"]):
        assert re.search(rf"│ {re.escape(name)}\s+│.*│\s+{f1:.4f} │", out), (name, out)   # one line, unfolded
    assert "stopped" in board.set_index("name").loc["runs/kf", "state"], board
    said = " ".join(out.split())
    assert re.search(r"left out to fit the terminal's 60 columns: [^;]*task, model,", said), out
    for width in (50, 44):      # under the fewest columns' widths: the names fold, no score nor header word does
        out = _leaderboard_at(width, outputs, monkeypatch)[1]
        assert max(len(line) for line in out.splitlines()) <= width, out
        for f1 in board["val_macro_f1"]:
            assert re.search(rf"│\s+{f1:.4f} │", out), (width, f1, out)
        assert "│ runs/kf " in out and re.search(r"┃\s+macro-F1 ┃", out) and "│ stopped │" in out, (width, out)


def test_a_filter_on_a_yes_no_option_takes_it_as_config_yaml_writes_it(outputs):
    """`--filter pretrained=false`, as config.yaml writes the value (`pretrained: false`), matched no run: the
    value was compared with Python's spelling, 'False'. A true / false option matches true / false in any case
    (and 1 / 0, yes / no, as the manifest's keep column reads them); its != likewise."""
    for run, pretrained in (("best", False), ("mid", True)):
        cfg = outputs / "runs" / run / "config.yaml"
        cfg.write_text(cfg.read_text() + f"pretrained: {str(pretrained).lower()}\n")
    runs = find_runs(outputs)
    for value in ("false", "False", "FALSE", "no", "0"):
        assert list(leaderboard(runs, filters=[f"pretrained={value}"])["name"]) == ["runs/best"], value
    assert list(leaderboard(runs, filters=["pretrained=true"])["name"]) == ["runs/mid"]
    assert list(leaderboard(runs, filters=["pretrained!=false"])["name"]) == ["runs/mid"]
    assert list(leaderboard(runs, filters=["loss=focal"])["name"]) == ["runs/best"]       # text as before


def test_a_tune_trial_ctrl_c_stopped_is_stopped_not_failed(outputs):
    """A tune study stopped by Ctrl-C (or SIGTERM) in its trial 0 at epoch 9 of 40 left that trial in trials.csv as
    Optuna records it, state fail, message 'interrupted (Ctrl-C)', and `imgcls runs` listed it 'failed 9/40', as a
    trial whose values broke train: tune itself counts it no failure and runs its values again on resume. It is
    'stopped' (ended before its epochs, nothing trains it), as a run Ctrl-C stopped; a trial that failed stays
    'failed'."""
    from imgcls.tune import INTERRUPTED, INTERRUPTED_BY_SIGTERM
    study = outputs / "tune" / "s2"
    for n in range(4):
        fake_run(study / f"trial_{n:04d}", "resnet10t", [("a", "a"), ("b", "b")], epochs=2)
        (study / f"trial_{n:04d}" / "config.yaml").write_text(yaml.safe_dump({"model": "resnet10t", "img_size": 32,
                                                                             "epochs": 40}))
    pd.DataFrame({"trial": range(4), "state": "fail", "value": "",
                  "message": [INTERRUPTED, INTERRUPTED_BY_SIGTERM, "RuntimeError: CUDA out of memory", ""]}).to_csv(
        study / "trials.csv", index=False)
    board = leaderboard(find_runs(outputs / "tune"), sort="name")
    got = dict(zip(board["name"], board["state"] + " " + board["progress"]))
    assert got == {"s1/trial_0000": " 1/1", "s2/trial_0000": "stopped 2/40", "s2/trial_0001": "stopped 2/40",
                   "s2/trial_0002": "failed 2/40", "s2/trial_0003": "failed 2/40"}, got


def test_a_stopped_tune_trial_resumed_to_its_end_is_finished(outputs):
    """A tune trial SIGTERM stopped (trials.csv: fail, 'interrupted (SIGTERM)') that `imgcls train --resume` then
    trained to its last epoch (its last.pt finished) was still listed 'stopped 3/3', and `imgcls ensemble` of it
    warned 'a stopped run (3/3 epochs)' and named `imgcls train --resume`, which says it is already finished. Its
    folder is a finished run; one stopped and not resumed stays 'stopped'."""
    from imgcls.runs import stopped_state
    from imgcls.tune import INTERRUPTED_BY_SIGTERM
    study = outputs / "tune" / "s3"
    for n, finished in enumerate((True, False)):
        trial = fake_run(study / f"trial_{n:04d}", "resnet10t", [("a", "a"), ("b", "b")], epochs=3)
        (trial / "last.pt").write_bytes(b"")
        (trial / "last_state.json").write_text(json.dumps({"epoch": 3 if finished else 2, "finished": finished}))
    pd.DataFrame({"trial": range(2), "state": "fail", "value": "", "message": INTERRUPTED_BY_SIGTERM}).to_csv(
        study / "trials.csv", index=False)
    board = leaderboard(find_runs(study), sort="name")
    got = dict(zip(board["name"], board["state"] + " " + board["progress"]))
    assert got == {"trial_0000": " 3/3", "trial_0001": "stopped 3/3"}, got
    assert stopped_state(study / "trial_0000") is None
    assert stopped_state(study / "trial_0001") == ("stopped", "3/3")


def test_a_pruned_or_failed_tune_trial_resumed_to_its_end_is_finished(outputs):
    """A tune trial Optuna pruned after epoch 1 (trials.csv: pruned, epochs_run 1) that `imgcls train --resume` then
    trained to its end still read 'pruned 3/3' in `imgcls runs`, and a failed one resumed to its end 'failed 3/3'.
    As for a stopped trial: its folder finished, with epochs beyond those trials.csv recorded, is a finished run. A
    trial pruned or failed after its last epoch (its last.pt finished too, no epoch beyond), one not resumed, and
    one whose table has no epochs_run keep their state."""
    from imgcls.runs import stopped_state
    study = outputs / "tune" / "s4"
    # (trials.csv state, epochs_run, epochs its folder has done, last.pt finished)
    trials = [("pruned", 1, 3, True), ("fail", 2, 3, True), ("pruned", 3, 3, True), ("fail", 3, 3, True),
              ("pruned", 1, 1, False), ("fail", 2, 2, False)]
    for n, (_, _, done, finished) in enumerate(trials):
        trial = fake_run(study / f"trial_{n:04d}", "resnet10t", [("a", "a"), ("b", "b")], epochs=3)
        metrics = pd.read_csv(trial / "metrics.csv")
        metrics[metrics["epoch"] <= done].to_csv(trial / "metrics.csv", index=False)
        (trial / "last.pt").write_bytes(b"")
        (trial / "last_state.json").write_text(json.dumps({"epoch": done, "finished": finished}))
    table = pd.DataFrame({"trial": range(len(trials)), "state": [t[0] for t in trials],
                          "value": "", "epochs_run": [t[1] for t in trials], "message": ""})
    table.to_csv(study / "trials.csv", index=False)
    board = leaderboard(find_runs(study), sort="name")
    got = dict(zip(board["name"], board["state"] + " " + board["progress"]))
    assert got == {"trial_0000": " 3/3", "trial_0001": " 3/3", "trial_0002": "pruned 3/3", "trial_0003": "failed 3/3",
                   "trial_0004": "pruned 1/3", "trial_0005": "failed 2/3"}, got
    assert stopped_state(study / "trial_0000") is None
    # a table without epochs_run (nothing tells the epochs the trial ran): its state as recorded
    table.drop(columns="epochs_run").to_csv(study / "trials.csv", index=False)
    board = leaderboard(find_runs(study), sort="name")
    assert list(board["state"][:2]) == ["pruned", "failed"], board


def test_a_fold_read_alone_is_a_run_of_its_epochs_not_a_stopped_k_fold_set(outputs):
    """`imgcls runs outputs/runs/kf3/fold_0` and `imgcls runs diff outputs/runs/kf3/fold_0 B` (a fold is a member
    `imgcls ensemble` takes alone) listed the finished fold 'stopped folds done 0': its config.yaml repeats the set's
    --folds, read as a k-fold set with no fold folders and no oof_score.json. A fold read alone is a run: its
    epochs done of those set."""
    from imgcls.runs import read_run
    fold = outputs / "runs" / "kf" / "fold_0"
    cfg = fold / "config.yaml"
    cfg.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()), "folds": "all"}))   # as train writes it
    run = read_run(fold)
    assert (run.kind, run.state, run.progress) == ("run", "", "2/2"), (run.kind, run.state, run.progress)
    d = diff_runs(fold, outputs / "runs" / "best")
    assert d["a"].state == "" and d["a"].progress == "2/2"
    r = CliRunner().invoke(app, ["runs", str(fold), "--csv", "-"])
    assert r.exit_code == 0 and ",stopped," not in r.output and "folds done" not in r.output, r.output


def test_an_older_run_reads_an_option_added_later_at_its_default_in_diff_and_filter(tmp_path):
    """A run of an older imgcls records no `metric` (the option came later): `runs diff` of it and a newer run
    listed `metric | (blank) | macro_f1` as a difference, and `--filter metric=macro_f1` missed it. A config.yaml
    train wrote whole (weights_source) is read as today's train reads it: an option it lacks at its default; a
    record of how it ran that it lacks (device_used) stays unknown."""
    old = fake_run(tmp_path / "runs" / "old", "resnet10t", [("a", "a")], weights_source=None)
    new = fake_run(tmp_path / "runs" / "new", "resnet10t", [("a", "a")], weights_source=None, metric="macro_f1",
                   device_used="cpu")
    d = diff_runs(old, new)
    assert "metric" not in [k for k, *_ in d["config"]] and "device_used" in d["ran"], d
    assert "device_used" not in find_runs(tmp_path / "runs" / "old")[0].config
    assert set(leaderboard(find_runs(tmp_path), filters=["metric=macro_f1"])["name"]) == {"runs/old", "runs/new"}
    fake_run(tmp_path / "runs" / "hand", "resnet10t", [("a", "a")])     # not train's whole record: as written
    assert "metric" not in find_runs(tmp_path / "runs" / "hand")[0].config


def test_diff_of_runs_that_picked_their_best_epoch_by_other_metrics_says_so(outputs):
    """`runs diff` of a --metric loss run and a macro-F1 one compared best_epoch and the scores at it as if picked
    alike. The metrics table says in one line that each run picked them by its own --metric."""
    cfg = outputs / "runs" / "best" / "config.yaml"
    cfg.write_text(cfg.read_text() + "metric: loss\n")
    d = diff_runs(outputs / "runs" / "best", outputs / "runs" / "mid")
    assert d["picked_by"] == ["loss", "macro_f1"] and diff_runs(outputs / "runs" / "mid",
                                                                outputs / "runs" / "low")["picked_by"] == []
    r = CliRunner().invoke(app, ["runs", "diff", str(outputs / "runs" / "best"), str(outputs / "runs" / "mid")],
                           terminal_width=250)
    lines = [line.strip() for line in r.output.splitlines()]
    assert "best_epoch and the scores at it were picked by other --metric: A's by val loss, B's by val macro-F1" \
        in lines, r.output


def test_a_diverged_run_is_marked_diverged_with_no_score_and_ranked_last(outputs):
    """A run whose loss went NaN (train --lr 1e30) saved NaN probabilities (empty cells) and argmax's first class
    for every row: `imgcls runs` scored it (val acc 0.5, macro-F1 0.333) and ranked it among real runs. Its state
    is now 'diverged', its scores blank, and it is listed after every scored run."""
    d = fake_run(outputs / "runs" / "nan", "resnet10t", [("a", "a"), ("b", "a"), ("c", "a"), ("a", "a")])
    preds = pd.read_csv(d / "val_predictions.csv")
    preds[[f"p_{c}" for c in CLASSES]] = np.nan
    preds.to_csv(d / "val_predictions.csv", index=False)
    board = leaderboard(find_runs(outputs))
    row = board[board["name"] == "runs/nan"].iloc[0]
    assert row["state"] == "diverged" and np.isnan(row["val_macro_f1"]) and np.isnan(row["val_acc"])
    assert pd.isna(row["best_epoch"]) and row["scored_on"] == "" and row["n_val"] == 0, row
    assert list(board["name"]).index("runs/nan") > list(board["name"]).index("runs/low")
    r = CliRunner().invoke(app, ["runs", str(outputs)])
    out = " ".join(r.output.split())
    assert r.exit_code == 0 and "diverged 3/3" in out and "diverged: its loss went NaN, no score" in out, out


def test_a_run_named_fold_0_in_another_run_s_folder_is_listed(tmp_path):
    """find_runs skipped every fold_<k> folder under a run it had found, judging a fold by its name: a plain run
    trained with `--name fold_0` into another run's folder (`--out runs/A`) was missing from `imgcls runs`. Only a
    k-fold set's folds (its config.yaml records --folds: run_names.fold_set) belong to their run."""
    from conftest import make_tiny_run
    runs = tmp_path / "runs"
    make_tiny_run(make_tiny_run(runs / "A") / "fold_0")
    make_tiny_run(runs / "kf", folds=2)
    assert sorted(str(r.path.relative_to(runs)) for r in find_runs(runs)) == ["A", "A/fold_0", "kf"]


def test_a_plain_run_holding_a_run_named_fold_0_is_a_run_not_a_k_fold_set(tmp_path):
    """read_run took a run folder with any fold_<k>/metrics.csv for a k-fold set: a plain run A holding a run
    trained with `--name fold_0` into it (`--out runs/A`) was listed as kind k-fold, its scores the nested run's
    'folds'. Only a k-fold set's folds (its config.yaml records --folds: run_names.fold_set) make it one."""
    a = fake_run(tmp_path / "runs" / "A", "resnet10t", [("a", "a"), ("b", "b")])
    fake_run(a / "fold_0", "resnet10t", [("a", "b"), ("b", "b")])
    kinds = {r.path.name: r.kind for r in find_runs(tmp_path / "runs")}
    assert kinds == {"A": "run", "fold_0": "run"}, kinds


def test_a_predictions_table_whose_root_column_is_all_empty_is_read_without_a_pandas_warning(tmp_path):
    """A val_predictions.csv whose `root` column is empty in every row (a run of rows named by path only) reads back
    from the CSV as float64 NaN: runs' row keys took it with fillna('').astype(str), which pandas 3 warns about
    (Pandas4Warning: a str fill value for a float64 column) and pandas 4 refuses. The keys are the paths, no warning."""
    import warnings
    from imgcls.runs import read_run
    d = fake_run(tmp_path / "runs" / "r", "m", [("a", "a"), ("b", "b"), ("c", "a")])
    preds = pd.read_csv(d / "val_predictions.csv").assign(root="")
    preds.to_csv(d / "val_predictions.csv", index=False)
    assert pd.read_csv(d / "val_predictions.csv")["root"].dtype == np.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = read_run(d)
    assert run.row_keys == {"0.png", "1.png", "2.png"} and run.row_paths == run.row_keys


def test_diff_shows_the_time_change_as_the_difference_of_the_times_shown(tmp_path):
    """`imgcls runs diff A B` showed A's 1.84 s and B's 0.40 s as `0m02s | 0m00s | -0m01s`: each cell rounded on its
    own, the change from the exact -1.44 s, so the three cells disagreed. The change is the difference of the times
    as shown (runs.duration_change), at every size: an hour or more is shown to the minute (rounded)."""
    from imgcls.runs import duration_change
    good = [("a", "a"), ("b", "b")]
    for a, b, cells in ((0.92, 0.20, "0m02s 0m00s -0m02s"),          # two epochs each: 1.84 s and 0.40 s
                        (1814.5, 1830.9, "1h00m 1h01m +1m00s")):       # 3629 s and 3661.8 s
        fake_run(tmp_path / f"A{a}", "resnet10t", good, epochs=2, seconds=a)
        fake_run(tmp_path / f"B{b}", "resnet10t", good, epochs=2, seconds=b)
        r = CliRunner().invoke(app, ["runs", "diff", str(tmp_path / f"A{a}"), str(tmp_path / f"B{b}")])
        row = next(line for line in r.output.splitlines() if "time (epochs)" in line)
        assert r.exit_code == 0 and " ".join(row.replace("│", " ").split()[2:]) == cells, r.output
    assert duration_change(3500, 3600.2) == "+1m40s" and duration_change(20, 3) == "-0m17s"
    assert duration_change(0, 3 * 3600 + 29) == "+3h00m" and duration_change(5.4, 5.2) == "+0m00s"


def test_a_time_cell_of_an_hour_or_more_is_rounded_to_the_minute_as_a_shorter_one_is_to_the_second():
    """A time cell of an hour or more cut its seconds (3,659 s showed 1h00m, 3 h 59 s 3h00m) where a shorter one
    rounded (59.6 s: 1m00s): each is rounded half up now (runs.shown_seconds), the change of two the same."""
    from imgcls.runs import duration, duration_change
    cells = {59.4: "0m59s", 59.5: "1m00s", 59.6: "1m00s", 3599.4: "59m59s", 3599.6: "1h00m", 3629.9: "1h00m",
             3630: "1h01m", 3659: "1h01m", 3 * 3600 + 59: "3h01m", 7199.6: "2h00m", 2.5: "0m03s"}
    assert {s: duration(s) for s in cells} == cells
    assert duration_change(3600, 3659) == "+1m00s" and duration_change(3659, 3629) == "-1m00s"


def test_diff_shows_a_score_change_as_the_difference_of_the_scores_shown(tmp_path, capsys):
    """`imgcls runs diff A B` showed macro-F1s of 0.12344 and 0.12356 as `0.1234 | 0.1236 | +0.0001`: each cell
    rounded to 4 decimals, the change from the exact +0.00012, so the three cells disagreed (the time row's fault,
    runs.duration_change). A score's change, and a class's in the per-class table, is the difference of the scores
    as shown (runs.score_change); a class whose shown F1s are equal is unchanged."""
    from imgcls.runs import diff_runs, print_diff, score_change
    good = [("a", "a"), ("b", "b"), ("c", "c")]
    d = diff_runs(fake_run(tmp_path / "A", "resnet10t", good), fake_run(tmp_path / "B", "resnet10t", good))
    d["metrics"] = [(k, 0.12344, 0.12356, 0.00012) if k == "val_macro_f1" else
                    (k, 0.5, 0.49994, -0.00006) if k == "val_acc" else (k, a, b, dv) for k, a, b, dv in d["metrics"]]
    pc = d["per_class"]
    pc["f1_a"], pc["f1_b"] = [0.12344, 0.123451, 0.5], [0.12356, 0.123549, 0.5]
    pc["delta_f1"] = pc["f1_b"] - pc["f1_a"]
    capsys.readouterr()
    print_diff(d)
    rows = {line.replace("│", " ").split()[0]: " ".join(line.replace("│", " ").split()[1:])
            for line in capsys.readouterr().out.splitlines() if line.replace("│", " ").split()}
    assert rows["val_macro_f1"] == "0.1234 0.1236 +0.0002" and rows["val_acc"] == "0.5000 0.4999 -0.0001", rows
    assert rows["a"] == "0.1234 0.1236 +0.0002" and "b" not in rows, rows       # b: 0.1235 both, unchanged
    assert score_change(0.12349, 0.12351) == "+0.0000" and score_change(0.3, 0.1) == "-0.2000"
