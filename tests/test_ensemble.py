"""imgcls ensemble: voting on hand-made probabilities, weights fitted on OOF predictions, a two-run ensemble
that predict consumes, and clear errors for members that do not share classes."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import make_image, make_tiny_run, mark_training
from imgcls.cli import app
from imgcls.ensemble import fit_weights, load_spec, vote
from imgcls.errors import UserError

runner = CliRunner()

A = np.array([[0.6, 0.4, 0.0], [0.2, 0.3, 0.5]])
B = np.array([[0.1, 0.9, 0.0], [0.4, 0.4, 0.2]])
C = np.array([[0.45, 0.55, 0.0], [0.1, 0.2, 0.7]])


def test_soft_vote_is_the_mean():
    assert np.allclose(vote([A, B], "soft"), (A + B) / 2)


def test_weighted_vote_uses_normalised_weights():
    assert np.allclose(vote([A, B], "weighted", [3, 1]), 0.75 * A + 0.25 * B)
    with pytest.raises(UserError, match="one weight per member"):
        vote([A, B], "weighted", [1])


def test_hard_vote_counts_argmaxes_and_breaks_ties_by_mean_probability():
    # image 0: votes A->0, B->1, C->1 => class 1 with 2/3; image 1: votes 2, (0|1 tie at 0.4 -> 0), 2 => class 2
    v = vote([A, B, C], "hard")
    assert v.argmax(1).tolist() == [1, 2]
    assert np.allclose(v[0], [1 / 3, 2 / 3, 0], atol=1e-6)
    # two members disagreeing: equal votes, the higher mean probability decides (image 0: mean p0 .35 vs p1 .65)
    assert vote([A, B], "hard").argmax(1)[0] == 1
    # weights change the outcome: A alone outweighs B + C
    assert vote([A, B, C], "hard", [0.6, 0.2, 0.2]).argmax(1)[0] == 0


def test_auto_weights_prefer_the_better_member():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    good = 0.7 * np.eye(3)[y] + 0.3 * rng.dirichlet(np.ones(3), 200)
    bad = rng.dirichlet(np.ones(3), 200)
    w = fit_weights([good, bad], y, "weighted")
    assert w.sum() == pytest.approx(1) and w[0] > 0.8
    wf = fit_weights([bad, good], y, "hard")
    assert wf[1] > wf[0]


def test_a_fitted_weight_at_zero_is_zero():
    """SLSQP leaves ~1e-17 on a member the fit dropped; it is 0, so predict can leave that member out."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    good = 0.7 * np.eye(3)[y] + 0.3 * rng.dirichlet(np.ones(3), 200)
    wrong = 0.98 * np.eye(3)[(y + 1) % 3] + 0.02 / 3               # confidently wrong: any share of it costs
    w = fit_weights([good, wrong], y, "weighted")
    assert w[1] == 0.0 and w[0] == 1.0


def _val_rows(root, n=24, classes="abc"):
    return [(str(root), f"{classes[i % 3]}/{i:03d}.png", classes[i % 3]) for i in range(n)]


def _run_and_kfold_set(tmp_path):
    """The validation rows, a one-checkpoint run (effnet, the better) and a 2-fold set (resnet) over them."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, folds=2, val_rows=rows,
                       val_quality=0.1)
    return rows, r1, r2


def test_a_member_without_val_predictions_names_the_way_on_its_state_takes(tmp_path):
    """read_oof said "if it was interrupted, imgcls train --resume RUN finishes it" of any run whose
    val_predictions.csv is missing; a finished run's resume writes nothing ('already finished'), and a stopped run
    whose last.pt is gone is refused by --resume. The way on is rundir.written_file_fix's: finish_fix for a stopped
    run (predict's and ensemble's), a restore or a new run for a finished one."""
    from imgcls.ensemble.spec import read_oof

    def said(run):
        with pytest.raises(UserError) as e:
            read_oof(run, ["a", "b", "c"])
        line = str(e.value)
        assert line.startswith(f"{run / 'val_predictions.csv'} does not exist: the run has no validation "
                               f"predictions to score or fit weights on (train writes them as it validates); "), line
        return line

    done = mark_training(make_tiny_run(tmp_path / "runs" / "done"), done=4, epochs=4, best=3, finished=True)
    line = said(done)
    assert line.endswith(f"; it finished, so train --resume writes nothing again: restore the file from a backup, or "
                         f"train it again under another name: imgcls train --config {done / 'config.yaml'} --name "
                         f"done-2 (Python: run_train(TrainConfig.resolve({{'name': 'done-2'}}, "
                         f"config='{done / 'config.yaml'}')))"), line
    stopped = mark_training(make_tiny_run(tmp_path / "runs" / "stopped"), done=2, epochs=4, best=1)
    # its file was written at its best epoch and deleted since: a resume writes it only at a better epoch (a
    # reviewer's run trained on without one, the file still missing), so no resume is promised (it was)
    line = said(stopped)
    assert line.endswith(f"; its val_predictions.csv is gone after it validated (deleted since?), and train --resume "
                         f"does not write it again: restore the file from a backup, or train it again under another "
                         f"name: imgcls train --config {stopped / 'config.yaml'} --name stopped-2 (Python: run_train("
                         f"TrainConfig.resolve({{'name': 'stopped-2'}}, config='{stopped / 'config.yaml'}')))"), line
    from imgcls.train.rundir import RunLock
    with RunLock(stopped):      # trained now: its resume is refused by the lock; it writes the file as it validates
        assert said(stopped).endswith("; imgcls train is training it now: wait for it to finish (it writes the file "
                                      "as it validates)")
    for f in ("best.pt", "metrics.csv", "last.pt", "last_state.json"):     # stopped before its first validation
        (stopped / f).unlink(missing_ok=True)
    assert said(stopped).endswith(f"; finish it with imgcls train --resume {stopped} (Python: run_train("
                                  f"TrainConfig(), resume='{stopped}'))")


def test_a_malformed_member_val_predictions_csv_is_one_line(tmp_path):
    """read_oof read a member's val_predictions.csv with plain pandas: a malformed file (a row with more fields than
    the header) was pandas' ParserError traceback. It is read by rundir.read_validation (layouts.read_csv, the owner
    of a CSV's one-line errors, as predict reads it): exit 2, one line naming the file and the fix, nothing
    written."""
    from test_cli import one_error_line
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows)
    bad = r2 / "val_predictions.csv"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([*lines[:2], lines[2] + ",extra", *lines[3:]]) + "\n")
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(tmp_path / "ens")])
    line = one_error_line(res)
    # imgcls wrote the file: no row of it is the user's to mend ("fix that row" was a user's CSV's fix)
    fix = "imgcls train wrote it: restore it from a backup, or train the run again"
    assert str(bad) in line and "line 3 has" in line and line.endswith(f"; {fix}"), line
    assert not (tmp_path / "ens").exists()


def test_build_ensemble_given_one_path_instead_of_a_list_names_the_list_it_takes(tmp_path):
    """build_ensemble('outputs/runs/a') (a notebook's slip for ['outputs/runs/a', ...]) read the string's characters
    as run folders: `run folder o does not exist; give a folder under outputs/runs`, naming no run the user gave.
    A str or path in `runs` is a TypeError naming the argument and the list it takes, before anything is read."""
    from imgcls.ensemble import build_ensemble
    run = make_tiny_run(tmp_path / "runs" / "effnet")
    for given in (str(run), run):
        with pytest.raises(TypeError, match=re.escape(f"build_ensemble's runs must be a list of run folders (got "
                                                      f"the path {str(run)!r}); pass build_ensemble([")):
            build_ensemble(given, out=tmp_path / "ens")
    # None: no runs given, the step's own line (a bare TypeError 'NoneType' object is not iterable since the path
    # arguments were checked: reviewer); a number: the argument named
    with pytest.raises(UserError, match=re.escape("give two or more runs: imgcls ensemble")):
        build_ensemble(None, out=tmp_path / "ens")
    with pytest.raises(TypeError, match=re.escape("build_ensemble's runs must be a list of run folders (got an int); "
                                                  "pass build_ensemble(['outputs/runs/A', 'outputs/runs/B'])")):
        build_ensemble(5, out=tmp_path / "ens")
    assert not (tmp_path / "ens").exists()


def test_ensemble_and_predict_print_their_output_on_stdout_for_a_script_quiet_or_not(tmp_path, monkeypatch):
    """A script chaining the steps (ENS=$(imgcls ensemble -q ...); SUB=$(imgcls predict -q "$ENS" ...)) got nothing:
    each said its output only in an info line on stderr, which --quiet silences. As train's run folder: one line on
    stdout, --quiet or not: ensemble's folder (what predict takes), predict's submission file (what is uploaded)."""
    rows, r1, r2 = _run_and_kfold_set(tmp_path)
    test = tmp_path / "test 런"
    for i in range(3):
        make_image(test / f"t{i}.png", seed=50 + i, kind="noise")
    monkeypatch.chdir(tmp_path)
    for quiet in (["-q"], []):
        ens = tmp_path / f"ens{len(quiet)} 런"
        r = CliRunner().invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(ens), *quiet])
        assert r.exit_code == 0 and r.stdout.endswith(f"{ens}\n"), (r.stdout, r.stderr)
        assert r.stdout == f"{ens}\n" or not quiet, r.stdout        # -q: that line alone (the table goes)
        r = CliRunner().invoke(app, ["predict", "--no-plots", str(ens), "--data", str(test), "--workers", "0", *quiet])
        assert r.exit_code == 0 and r.stdout == f"outputs/predictions/{ens.name}/submission.csv\n", r.output
        assert (tmp_path / r.stdout.strip()).is_file()
        pred = tmp_path / f"pred{len(quiet)}"
        r = CliRunner().invoke(app, ["predict", "--no-plots", str(ens), "--data", str(test), "--out", str(pred),
                                     "--workers", "0", *quiet])
        assert r.exit_code == 0 and r.stdout == f"{pred / 'submission.csv'}\n", r.output


def test_two_run_ensemble_writes_spec_and_predict_uses_it(tmp_path):
    rows, r1, r2 = _run_and_kfold_set(tmp_path)
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--method", "weighted", "--weights", "auto",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "effnet" in res.output and "resnet" in res.output and "ensemble (weighted)" in res.output
    spec = load_spec(out)
    assert [m.name for m in spec.members] == ["effnet", "resnet"]
    assert len(spec.members[1].checkpoints) == 2                 # both folds of the k-fold run
    assert spec.members[0].weight > spec.members[1].weight       # the better OOF member weighs more
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 4 and scores["val_macro_f1"].notna().all()
    # the auto weights were fitted on the rows the ensemble is scored on: its label says so, and a cross-fitted
    # score (weights fitted without the scored rows) stands beside it (issue 15, item 13)
    assert list(scores["member"][2:]) == ["ensemble (weighted), weights fitted on these rows",
                                          "ensemble (weighted), weights cross-fitted (5 parts of these rows)"]
    assert "weights fitted on these rows" in " ".join(res.output.split())
    assert "ensemble (weighted), weights fitted on these rows" in res.output   # piped: tables are not folded
    # the k-fold member's score is out-of-fold, and the table says so (a score names the rows it was computed on)
    assert "a k-fold member's rows (ckpts > 1) are out-of-fold" in " ".join(res.output.split())
    r3 = make_tiny_run(tmp_path / "runs" / "effnet2", seed=3, val_rows=rows, val_quality=0.5)
    res1 = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r3), "--out", str(tmp_path / "ens_1")])
    assert res1.exit_code == 0 and "out-of-fold" not in res1.output, res1.output
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "weighted", "--weights", "auto",
                              "--out", str(tmp_path / "ens_q"), "-q"])
    # --quiet: the scores are in scores.csv; a warning still shows (the fit leaves resnet at 0: effnet alone runs)
    assert res.exit_code == 0 and res.stdout == f"{tmp_path / 'ens_q'}\n", res.output     # the folder, for a script
    assert all(line.startswith("warning: ") for line in res.stderr.splitlines()), res.output
    import re
    html = (out / "report.html").read_text()
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    assert len(srcs) == 2 and all(x.startswith("data:image/png;base64,") for x in srcs)
    assert "Members and weights" in html and "effnet" in html and "Per-class F1 on the common val rows" in html
    # the summary's scores in words, the fitted one labelled optimistic (it read `weights fitted on scored rows |
    # True` and `ensemble macro f1 crossfit`, and the plain number stood unlabelled)
    flat = " ".join(html.split())
    assert "ensemble macro-F1 on them (weights fitted on these rows: optimistic)" in flat
    # the 5 parts are the weight cross-fit's, of the rows scored: not the data's folds (the k-fold member has 2)
    assert ("ensemble macro-F1, weights cross-fitted (5 parts of these rows: each row scored with weights fitted "
            "without it)") in flat
    assert "weights fitted on scored rows" not in flat and "macro f1 crossfit" not in flat
    doc = yaml.safe_load((out / "spec.yaml").read_text())
    assert not doc["members"][0]["run"].startswith("/")          # relative: the tree can move

    test = tmp_path / "test"
    for i in range(4):
        make_image(test / f"t{i}.png", seed=50 + i, kind="noise")
    pred = tmp_path / "pred"
    res = runner.invoke(app, ["predict", "--no-plots", str(out), "--data", str(test), "--out", str(pred),
                              "--workers", "0"])
    assert res.exit_code == 0, res.output
    probs = pd.read_parquet(pred / "probs.parquet")
    # the ensemble's probabilities are the weighted mean of the members' (each the mean of its folds)
    from imgcls.ensemble import member_from_run
    from imgcls.predict import EnsembleSpec, predict_members
    from imgcls.tta import parse_tta
    paths = [test / p for p in probs["path"]]
    one = [predict_members(paths, EnsembleSpec(m.name, "soft", [member_from_run(m.run)], list("abc")),
                           parse_tta("none"), workers=0).tta for m in spec.members]
    w = spec.weights
    assert np.allclose(probs.filter(like="p_").to_numpy(), w[0] * one[0] + w[1] * one[1], atol=1e-5)


def test_the_ensemble_report_shows_a_class_without_rows_as_not_scored_not_as_f1_0(tmp_path):
    """The ensemble report's per-class F1 table showed a class none of the common val rows has as F1 0.0000 for
    every member and the ensemble, where predict's and train's reports show '–' (metrics.per_class_shown)."""
    rows = _val_rows(tmp_path / "data", n=12, classes="abb")          # no row of class c
    r1 = make_tiny_run(tmp_path / "runs" / "r1", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "r2", seed=2, val_rows=rows, val_quality=0.3)
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = " ".join((out / "report.html").read_text().split())
    table = page[page.index("Per-class F1"):]
    c_row = re.search(r"<tr>\s*<td>c</td>(.*?)</tr>", table)
    assert c_row and re.findall(r"<td[^>]*>([^<]*)</td>", c_row.group(1)) == ["–", "–", "–", "0"], c_row.group(0)
    assert ("1 of 3 classes have no common val rows (c): each counts in the macro-F1 with F1 0" in
            page.replace("&#39;", "'")), page[page.index("Per-class F1"):][:600]


def test_the_ensemble_report_heads_its_confusion_matrices(tmp_path):
    """The ensemble report's confusion matrices stood under the per-class F1 table's heading, with none of their
    own (train's report heads them 'Confusion matrices'): a reader of the page's outline found no matrices."""
    rows = _val_rows(tmp_path / "data", n=12, classes="abc")
    r1 = make_tiny_run(tmp_path / "runs" / "r1", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "r2", seed=2, val_rows=rows, val_quality=0.3)
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    page = " ".join((out / "report.html").read_text().split())
    headings = re.findall(r"<h2>([^<]*)", page)
    assert headings[-1] == "Confusion matrices", headings
    after = page[page.index("<h2>Confusion matrices</h2>"):]
    assert 'alt="confusion matrix"' in after and 'alt="confusion matrix, row-normalised"' in after


def test_no_plots_writes_the_ensemble_s_tables_and_report_without_its_pngs(tmp_path):
    """ensemble drew its confusion-matrix PNGs on every build, with no switch (train and predict have --no-plots):
    a script's loop of ensembles paid matplotlib's seconds each time. --no-plots writes every other file and a
    report that says where the matrices go (no image it would show missing); a rebuild with it removes the earlier
    build's PNGs; the scores are the same; the default still draws them."""
    rows = _val_rows(tmp_path / "data", n=12, classes="abc")
    r1 = make_tiny_run(tmp_path / "runs" / "r1", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "r2", seed=2, val_rows=rows, val_quality=0.3)
    out = tmp_path / "ens"
    drawn = {}
    for flags in ([], ["--no-plots"], []):
        res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(out), "-q", *flags])
        assert res.exit_code == 0, res.output
        page = " ".join((out / "report.html").read_text().split())
        pngs = sorted(p.name for p in out.glob("*.png"))
        scores = yaml.safe_load((out / "spec.yaml").read_text())["scores"]
        if flags:
            assert pngs == [] and "<img" not in page, pngs
            assert re.findall(r"<h2>([^<]*)", page)[-1] == "Confusion matrices"
            after = page[page.index("<h2>Confusion matrices</h2>"):]
            assert ("figures not drawn (--no-plots): oof_predictions.csv holds their rows (label, pred), "
                    "per_class.csv and the table above their per-class scores") in html.unescape(after), after
            assert "Per-class F1 on the common val rows" in page
            assert {"spec.yaml", "scores.csv", "oof_predictions.csv", "per_class.csv"} <= {p.name for p in
                                                                                          out.iterdir()}
            assert scores == drawn["scores"]
        else:
            assert pngs == ["confusion_matrix.png", "confusion_matrix_normalized.png"], pngs
            assert len(re.findall(r"<img", page)) == 2 and "not drawn" not in page
            drawn["scores"] = scores
    from imgcls.ensemble import build_ensemble
    build_ensemble([r1, r2], out=tmp_path / "py", plots=False)          # the Python caller's keyword
    assert not list((tmp_path / "py").glob("*.png")) and (tmp_path / "py" / "report.html").is_file()


def test_run_predict_takes_the_ensemble_spec_build_ensemble_returns(tmp_path):
    """`spec = build_ensemble([...]); run_predict(spec, DATA)`, the object a notebook holds, was pathlib's
    `TypeError: expected str, bytes or os.PathLike object, not EnsembleSpec`: run_predict took only spec.path. The
    EnsembleSpec written is taken as its spec.yaml, with the same files and numbers."""
    from imgcls.ensemble import build_ensemble
    from imgcls.predict import run_predict
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows)
    spec = build_ensemble([r1, r2], out=tmp_path / "ens", plots=False)
    test = tmp_path / "test"
    for i in range(3):
        make_image(test / f"t{i}.png", seed=50 + i, kind="noise")
    by_object = run_predict(spec, test, out=tmp_path / "p1", workers=0, plots=False)
    by_path = run_predict(spec.path, test, out=tmp_path / "p2", workers=0, plots=False)
    assert by_object["source"] == by_path["source"] == str(spec.path.resolve())
    assert pd.read_parquet(tmp_path / "p1" / "probs.parquet").equals(pd.read_parquet(tmp_path / "p2" / "probs.parquet"))


def test_scores_csv_counts_the_checkpoints_the_ensemble_runs(tmp_path):
    """A weight-0 member is not run by predict (EnsembleSpec.running), yet scores.csv's ensemble row counted its
    checkpoints: a 1-checkpoint run weighted 1 beside a 2-fold set weighted 0 read 3 checkpoints for an ensemble
    that runs 1. The ensemble's rows count the checkpoints predict runs; the member keeps its own count, and the
    screen's and the report's notes say a weight-0 member is not run."""
    _, r1, r2 = _run_and_kfold_set(tmp_path)
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "weighted", "--weights", "1,0",
                              "--out", str(out)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "scores.csv").set_index("member")
    assert table.loc["resnet", "checkpoints"] == 2 and table.loc["resnet", "weight"] == 0
    assert table.loc["ensemble (weighted)", "checkpoints"] == 1, table
    note = "a member of weight 0 is not run (predict leaves it out; the ensemble's ckpts count what it runs)"
    assert note in " ".join(res.output.split()), res.output
    assert note in " ".join(html.unescape((out / "report.html").read_text()).split())


def test_a_member_of_weight_zero_is_not_run(tmp_path, monkeypatch):
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "weighted", "--weights", "1,0",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    test = tmp_path / "test"
    for i in range(4):
        make_image(test / f"t{i}.png", seed=50 + i, kind="noise")
    import imgcls.train.checkpoint as ck
    loaded, load = [], ck.load_model
    monkeypatch.setattr(ck, "load_model", lambda path, *a, **k: loaded.append(Path(path).parent.name) or
                        load(path, *a, **k))
    res = runner.invoke(app, ["predict", "--no-plots", str(out), "--data", str(test), "--out", str(tmp_path / "pred"),
                              "--workers", "0"])
    assert res.exit_code == 0, res.output
    assert loaded == ["effnet"] and "resnet x1 (w=0.00): not run" in " ".join(res.output.split())
    # predict.json and report.html say so too: the resnet's checkpoint is not one the prediction used
    members = json.loads((tmp_path / "pred" / "predict.json").read_text())["members"]
    assert [(m["name"], m["run"]) for m in members] == [("effnet", True), ("resnet", False)]
    html = (tmp_path / "pred" / "report.html").read_text()
    assert "not run: its weight 0 adds nothing to the vote" in html and "resnet/best.pt" not in html
    res = runner.invoke(app, ["predict", "--no-plots", str(r1), "--data", str(test), "--out", str(tmp_path / "alone"),
                              "--workers", "0"])
    assert res.exit_code == 0, res.output
    got, alone = (pd.read_parquet(tmp_path / d / "probs.parquet").filter(like="p_") for d in ("pred", "alone"))
    assert np.array_equal(got.to_numpy(), alone.to_numpy())


def test_weights_that_leave_one_member_to_run_say_the_ensemble_is_that_run(tmp_path):
    """`--method weighted --weights 1,0` built what predicts as one run (a member of weight 0 is not run) without a
    word, while `imgcls ensemble RUN` is refused as an ensemble of one. One warning names the weight-0 member, the
    run that is left and `imgcls predict` of it; weights that keep two members say nothing."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    for method in ("weighted", "hard"):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", method, "--weights", "1,0",
                                  "--out", str(tmp_path / method)])
        flat = " ".join(res.output.split())
        assert res.exit_code == 0, res.output
        assert "warning: resnet has weight 0, which is not run: the ensemble is effnet alone, an ensemble of one; " \
               f"give it a weight above 0, or predict with that run itself: imgcls predict {r1}" in flat, flat
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--weights", "1,2",
                              "--out", str(tmp_path / "two")])
    assert res.exit_code == 0 and "weight 0" not in res.output, res.output


def test_default_folder_is_named_by_method_and_members(tmp_path, monkeypatch):
    """Without --out / --name another method or set of members gets its own folder (a second ensemble no longer
    replaces the first one a submission was made from); the same ensemble rebuilt says it replaces its folder."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    monkeypatch.chdir(tmp_path)
    for method in ("soft", "hard"):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", method])
        assert res.exit_code == 0, res.output
        assert load_spec(tmp_path / "outputs" / "ensembles" / f"{method}-effnet+resnet").method == method
    assert "replaced" not in res.output
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "hard"])
    assert res.exit_code == 0 and "holds an earlier ensemble; this run replaces it once its files are all " \
        "written" in " ".join(res.output.split())
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--name", "../x"])
    assert res.exit_code == 2 and "not a plain folder name" in res.output


def test_a_hard_vote_one_member_outweighs_says_the_ensemble_is_that_member(tmp_path):
    """`ensemble A B --method hard --weights 1,2` (or weights a fit gave unequal: two members' are almost always)
    built what predicts as B alone, B's vote outweighing A's on every image, unsaid, labelled `ensemble (hard)`. One
    warning names the member that decides; weights where no member outweighs the rest (1,1; 2,1,1) say nothing,
    nor do weights that leave one member to run (1,0: a member of weight 0 is not run, a case of its own)."""
    from imgcls.ensemble.voting import deciding_member
    assert deciding_member([1 / 3, 2 / 3]) == 1 and deciding_member([0.6, 0.2, 0.2]) == 0
    assert deciding_member([0.5, 0.25, 0.25]) is None and deciding_member([0.5, 0.5]) is None
    assert deciding_member([1.0, 0.0]) is None and deciding_member([1.0]) is None
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "hard", "--weights", "1,2",
                              "--out", str(tmp_path / "h")])
    flat = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "warning: under --method hard, resnet's weight 0.667 is more than the other members' together (0.333): " \
           "its vote decides every image, so the ensemble predicts as resnet alone; use --method weighted" in flat, flat
    scores = load_spec(tmp_path / "h").scores
    assert scores["ensemble_macro_f1"] == pytest.approx(scores["members"]["resnet"]["common_macro_f1"])
    for i, w in enumerate(("1,1", "1,0")):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "hard", "--weights", w,
                                  "--out", str(tmp_path / f"n{i}")])
        assert res.exit_code == 0 and "decides every image" not in res.output, res.output


def test_weights_with_soft_say_the_vote_is_weighted(tmp_path):
    """`ensemble A B --method soft --weights 1,2` (or --weights with the default soft) built a weighted ensemble,
    its table's row `ensemble (weighted)`, without a word on why: the README said so only inside an error message.
    One line says the soft vote is weighted by the weights and built as --method weighted; soft without weights,
    weighted and hard with weights (a weighted argmax vote, labelled hard) say nothing of it."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    said = "a weighted soft vote (each member's probabilities averaged with its weight), built as --method weighted"
    for i, args in enumerate((["--method", "soft", "--weights", "1,2"], ["--weights", "1,2"],
                              ["--method", "soft", "--weights", "auto"])):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), *args, "--out", str(tmp_path / f"e{i}")])
        flat = " ".join(res.output.split())
        assert res.exit_code == 0, res.output
        assert f"--weights {args[-1]} with --method soft: {said}" in flat and "ensemble (weighted)" in flat, flat
        assert load_spec(tmp_path / f"e{i}").method == "weighted"
    for i, args in enumerate(([], ["--method", "weighted", "--weights", "1,2"],
                              ["--method", "hard", "--weights", "1,2"])):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), *args, "--out", str(tmp_path / f"n{i}")])
        assert res.exit_code == 0 and "weighted soft vote" not in res.output, res.output


def test_typed_weights_get_their_own_folder_and_a_refused_rebuild_replaces_nothing(tmp_path, monkeypatch):
    """`--weights 1,2` landed in weighted-A+B, the folder of the auto-weighted ensemble a submission was made from,
    and replaced it; `--weights 1,2,3` said "it is replaced" and then failed (the earlier one was kept). A run given
    twice was taken as two members (double weight, unsaid)."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    monkeypatch.chdir(tmp_path)
    ens = tmp_path / "outputs" / "ensembles"
    assert runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "weighted"]).exit_code == 0
    fitted = (ens / "weighted-effnet+resnet" / "spec.yaml").read_bytes()
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--weights", "1,2"])
    assert res.exit_code == 0 and "replaced" not in res.output, res.output
    assert [m.weight for m in load_spec(ens / "weighted-effnet+resnet-w1_2").members] == pytest.approx([1 / 3, 2 / 3])
    assert (ens / "weighted-effnet+resnet" / "spec.yaml").read_bytes() == fitted
    for bad in (["--weights", "1,2,3"], ["--weights", "1,-1"], ["--method", "hard", "--weight-metric", "logloss"]):
        res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--method", "weighted", *bad])
        assert res.exit_code == 2 and "replaced" not in res.output, (bad, res.output)
        assert len(res.output.strip().splitlines()) == 1, res.output
    assert (ens / "weighted-effnet+resnet" / "spec.yaml").read_bytes() == fitted
    assert sorted(p.name for p in ens.iterdir()) == ["weighted-effnet+resnet", "weighted-effnet+resnet-w1_2"]
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "runs/effnet"])
    assert res.exit_code == 2 and f"runs/effnet is given twice (as {r1} and runs/effnet)" in \
        " ".join(res.output.split()), res.output


def test_a_fold_given_beside_its_kfold_set_is_refused(tmp_path):
    """`ensemble RUN RUN/fold_0` was built: the fold counted once inside the set's mean and once as a member,
    double its weight, unsaid (a run given twice is refused for that)."""
    rows = _val_rows(tmp_path / "data")
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2, val_rows=rows)
    (kf / "fold_0" / "val_predictions.csv").write_bytes((kf / "val_predictions.csv").read_bytes())
    for args in ([kf, kf / "fold_0"], [kf / "fold_0", kf]):
        res = runner.invoke(app, ["ensemble", *map(str, args), "--out", str(tmp_path / "e")])
        flat = " ".join(res.output.split())
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert f"share the checkpoint {kf / 'fold_0' / 'best.pt'}" in flat and "not both" in flat, res.output
    assert not (tmp_path / "e").exists()


def test_a_fold_imgcls_train_is_training_now_is_used_with_a_warning(tmp_path):
    """`ensemble RUN/fold_0 RUN/fold_1` while imgcls train trains the set's last fold used fold_1's half-trained
    best.pt without a word (the set itself is refused: "wait for it"). It is still used (named on purpose), with one
    warning naming it and its epoch; the finished fold_0 gets none."""
    from imgcls.train.rundir import RunLock
    rows = _val_rows(tmp_path / "data")
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2, val_rows=rows)
    (kf / "oof_score.json").unlink()                                      # its last fold not trained yet
    for k in (0, 1):
        (kf / f"fold_{k}" / "val_predictions.csv").write_bytes((kf / "val_predictions.csv").read_bytes())
    mark_training(kf / "fold_0", done=4, epochs=4, best=3, finished=True)
    mark_training(kf / "fold_1", done=2, epochs=4, best=1)
    with RunLock(kf):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(kf / "fold_0"), str(kf / "fold_1"),
                                  "--out", str(tmp_path / "e")])
    flat = " ".join(res.output.split())
    assert res.exit_code == 0 and (tmp_path / "e" / "spec.yaml").is_file(), res.output
    assert f"warning: {kf / 'fold_1'} is being trained by imgcls train now: its best.pt is from an unfinished run " \
           f"(epoch 1, epochs done 2/4)" in flat, flat
    assert flat.count("being trained") == 1, flat


def test_a_member_whose_loss_diverged_is_refused_by_name(tmp_path):
    """A member trained with too high an --lr (its loss NaN) saved empty probabilities: ensemble took it, its votes
    argmax's first class for every image. It is refused, exit 2, one line naming its file and the fix, nothing
    written."""
    from test_cli import one_error_line
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows)
    r2 = make_tiny_run(tmp_path / "runs" / "nan", model="test_resnet", seed=2, val_rows=rows)
    f = r2 / "val_predictions.csv"
    preds = pd.read_csv(f)
    preds[[c for c in preds.columns if c.startswith("p_")]] = np.nan
    preds.to_csv(f, index=False)
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(tmp_path / "ens")])
    line = one_error_line(res)
    assert f"{f} has no probabilities in {len(rows)} of its {len(rows)} rows: the run's loss diverged" in line, line
    assert f"leave {r2} out of the ensemble, or train it again with a lower --lr" in line, line
    assert not (tmp_path / "ens").exists()


def test_a_stopped_member_is_said_with_its_epochs_done(tmp_path):
    """`ensemble kf3 stopped` used a run whose training stopped (Ctrl-C at epoch 2 of 6, nothing trains it now)
    without a word: only a run still training was said. Its best.pt is a partial run's model: one warning names it
    and its epochs as `imgcls runs` labels them ('stopped 2/6'), and how to finish it; the finished member gets
    none."""
    rows = _val_rows(tmp_path / "data")
    done = make_tiny_run(tmp_path / "runs" / "done", seed=1, val_rows=rows)
    stopped = mark_training(make_tiny_run(tmp_path / "runs" / "stopped", seed=2, val_rows=rows),
                            done=2, epochs=6, best=1)
    mark_training(done, done=4, epochs=4, best=3, finished=True)
    res = runner.invoke(app, ["ensemble", "--no-plots", str(done), str(stopped), "--weights", "1,2",
                              "--out", str(tmp_path / "e")])
    flat = " ".join(res.output.split())
    assert res.exit_code == 0 and (tmp_path / "e" / "spec.yaml").is_file(), res.output
    assert f"warning: {stopped} is a stopped run (2/6 epochs): its best.pt is from a partial run, used as it " \
           f"is; finish it with imgcls train --resume {stopped} (Python: " in flat, flat
    assert flat.count("stopped run") == 1 and "(stopped" not in flat, flat     # 'stopped' said once, not twice


def test_a_stopped_member_whose_last_pt_is_gone_is_not_told_to_resume(tmp_path):
    """`ensemble done stopped`, stopped at epoch 2 of 3 and its last.pt (and last_state.json) deleted since: the
    warning said "finish the run first: imgcls train --resume RUN", which train refuses for it (nothing to continue
    from). It names what is gone and the way on that refusal names (rundir.finish_fix): a new run from its best.pt,
    or the run again under another name."""
    rows = _val_rows(tmp_path / "data")
    done = mark_training(make_tiny_run(tmp_path / "runs" / "done", seed=1, val_rows=rows),
                         done=4, epochs=4, best=3, finished=True)
    stopped = mark_training(make_tiny_run(tmp_path / "runs" / "stopped", seed=2, val_rows=rows),
                            done=2, epochs=3, best=2)
    (stopped / "last.pt").unlink()
    (stopped / "last_state.json").unlink()
    (stopped / "metrics.csv").write_text("epoch,val_macro_f1\n1,0.4\n2,0.5\n")
    res = runner.invoke(app, ["ensemble", "--no-plots", str(done), str(stopped), "--out", str(tmp_path / "e")])
    flat = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert f"warning: {stopped} is a stopped run (2/3 epochs): its best.pt is from a partial run, used as it is; " \
           f"its last.pt is gone, though its metrics.csv records 2 epochs, so it cannot be finished (train " \
           f"--resume refuses it): start a new run from its best.pt: imgcls train " in flat, flat
    assert f"--init-from {stopped} (Python: " in flat and "or train it again under another name: imgcls train " \
           f"--config {stopped / 'config.yaml'} --name stopped-2" in flat, flat
    assert "--resume " not in flat.replace("train --resume refuses", ""), flat


def test_fold_members_are_named_by_their_set(tmp_path, monkeypatch):
    """`ensemble RUN/fold_0 RUN/fold_1` wrote outputs/ensembles/soft-fold_0+fold_1, the folder another set's folds
    wrote into too (replacing the first ensemble), and named its members fold_0 / fold_1 in spec.yaml and the runs
    table. A fold member is named by its set (RUN.fold_0) everywhere its name shows."""
    from imgcls.ensemble.spec import ensemble_folder, member_from_run
    from imgcls.runs import read_run
    rows = _val_rows(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2, val_rows=rows)
    for k in (0, 1):
        (kf / f"fold_{k}" / "val_predictions.csv").write_bytes((kf / "val_predictions.csv").read_bytes())
    import shutil
    shutil.copytree(kf, tmp_path / "runs" / "other")
    res = runner.invoke(app, ["ensemble", "--no-plots", "runs/kf/fold_0", "runs/kf/fold_1"])
    assert res.exit_code == 0, res.output
    ens = tmp_path / "outputs" / "ensembles" / "soft-kf.fold_0+kf.fold_1"
    assert [m.name for m in load_spec(ens).members] == ["kf.fold_0", "kf.fold_1"]
    assert read_run(ens).model == "soft: kf.fold_0 + kf.fold_1"
    assert "kf.fold_0" in (ens / "report.html").read_text(encoding="utf-8")
    other = [member_from_run(tmp_path / "runs" / "other" / f"fold_{k}") for k in (0, 1)]
    assert ensemble_folder(None, None, other, "soft")[0] == "soft-other.fold_0+other.fold_1"


def test_checkpoint_files_given_are_named_by_their_run(tmp_path, monkeypatch):
    """`ensemble a/best.pt b/best.pt` named its members best / best_1 and its folder soft-best+best_1 (every run's
    best.pt shares that name). A run's or fold's best.pt given itself is named as its run (a, b; RUN.fold_K) in
    spec.yaml and the folder; its last.pt RUN.last; a checkpoint file of another name by its name."""
    import shutil
    from imgcls.ensemble.spec import member_from_run
    rows = _val_rows(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    for n, seed in (("a", 1), ("b", 2)):
        make_tiny_run(tmp_path / "runs" / n, seed=seed, val_rows=rows)
    res = runner.invoke(app, ["ensemble", "--no-plots", "runs/a/best.pt", "runs/b/best.pt"])
    assert res.exit_code == 0, res.output
    ens = tmp_path / "outputs" / "ensembles" / "soft-a+b"
    assert [m.name for m in load_spec(ens).members] == ["a", "b"], res.output
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2, val_rows=rows)
    (kf / "fold_1" / "last.pt").write_bytes((kf / "fold_1" / "best.pt").read_bytes())
    (tmp_path / "models").mkdir()
    shutil.copy(kf / "fold_0" / "best.pt", tmp_path / "models" / "effnet.pt")
    named = {p: member_from_run(p).name for p in ("runs/kf/fold_0/best.pt", "runs/kf/fold_1/last.pt",
                                                   "runs/kf/fold_0", "models/effnet.pt")}
    assert named == {"runs/kf/fold_0/best.pt": "kf.fold_0", "runs/kf/fold_1/last.pt": "kf.fold_1.last",
                     "runs/kf/fold_0": "kf.fold_0", "models/effnet.pt": "effnet"}


def test_an_ensemble_of_one_set_s_folds_says_the_set_is_that_ensemble(tmp_path):
    """`imgcls ensemble RUN/fold_0 RUN/fold_1` (an ensemble of folds, typed the obvious way): each fold validated on
    its own fold, so nothing could be scored, and the warning's way out, 'train the runs on the same split to
    compare', trains nothing that helps: the set itself is that ensemble, scored on its out-of-fold rows."""
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2, val_rows=_val_rows(tmp_path / "data"))
    oof = pd.read_csv(kf / "val_predictions.csv")
    for k, part in enumerate((oof.iloc[:12], oof.iloc[12:])):
        part.assign(fold=k).to_csv(kf / f"fold_{k}" / "val_predictions.csv", index=False)
    res = runner.invoke(app, ["ensemble", str(kf / "fold_0"), str(kf / "fold_1"), "--out", str(tmp_path / "e")])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "share no image" in said, res.output
    assert (f"the members are folds of the k-fold run {kf}, each validated on its own fold: that run, the "
            f"ensemble of its folds, is scored on its out-of-fold rows (imgcls predict {kf} averages its folds; "
            f"imgcls ensemble takes it as one member)") in said, said
    assert "train the runs on the same split" not in said, said



def test_plain_runs_named_fold_0_fold_1_sharing_no_image_are_not_said_to_be_a_set_s_folds(tmp_path):
    """The 'share no image' warning called any members in fold_<k> folders of one folder 'folds of the k-fold run':
    plain runs trained with `--name fold_0`, `--name fold_1` into a plain run's folder were sent to predict that
    run, which is no ensemble of them. Only a k-fold set's folds (run_names.fold_set) are; these are told to train
    on the same split."""
    rows = _val_rows(tmp_path / "data")
    a = make_tiny_run(tmp_path / "runs" / "A", val_rows=rows)
    for k, part in enumerate((rows[:12], rows[12:])):
        make_tiny_run(a / f"fold_{k}", seed=k, val_rows=part)
    res = runner.invoke(app, ["ensemble", str(a / "fold_0"), str(a / "fold_1"), "--out", str(tmp_path / "e")])
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "share no image" in said, res.output
    assert "train the runs on the same split" in said and "k-fold run" not in said, said

def test_a_rebuild_that_cannot_be_scored_leaves_no_score_of_the_earlier_ensemble(tmp_path):
    """An ensemble replaced in its folder by one whose members share no validation image (not scored): the earlier
    ensemble's oof_predictions.csv stayed, and `imgcls runs` listed the new ensemble with the earlier one's score."""
    rows, other = _val_rows(tmp_path / "data"), _val_rows(tmp_path / "other")
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.3)
    r3 = make_tiny_run(tmp_path / "runs" / "c", seed=3, val_rows=other, val_quality=0.3)
    out = tmp_path / "ens"
    assert runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(out), "-q"]).exit_code == 0
    assert (out / "oof_predictions.csv").is_file() and (out / "per_class.csv").is_file()
    res = runner.invoke(app, ["ensemble", str(r1), str(r3), "--out", str(out)])
    assert res.exit_code == 0 and "share no image" in res.output, res.output
    assert not (out / "oof_predictions.csv").exists() and not (out / "per_class.csv").exists()
    res = runner.invoke(app, ["runs", str(out), "--csv", "-"])
    board = pd.read_csv(__import__("io").StringIO(res.output))
    assert res.exit_code == 0 and list(board["name"]) == ["ens"] and board["val_macro_f1"].isna().all(), res.output


def test_mismatched_classes_are_a_clear_error(tmp_path):
    r1 = make_tiny_run(tmp_path / "runs" / "abc", classes=("a", "b", "c"))
    r2 = make_tiny_run(tmp_path / "runs" / "abd", classes=("a", "b", "d"))
    res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2
    assert "do not share classes" in res.output and "Traceback" not in res.output
    # the classes that differ are cut as every list is ('and N more'; they were cut at 5 with nothing said)
    r3 = make_tiny_run(tmp_path / "runs" / "many", classes=tuple("abcdefghi"))
    res = runner.invoke(app, ["ensemble", str(r1), str(r3), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "classes differ: d, e, f, g, h and 1 more" in " ".join(res.output.split()), \
        res.output


def test_missing_run_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["ensemble", str(tmp_path / "nope"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_real_runs_from_train_ensemble_and_predict(tmp_path):
    """Two runs written by the train step itself (1 epoch, 32 px): ensemble them, then predict with the spec."""
    from conftest import make_image_folder
    from imgcls.train import run_train
    from imgcls.train.config import TrainConfig
    data = make_image_folder(tmp_path / "raw", {"a": 6, "b": 6, "c": 6}, size=(36, 36))
    runs = []
    for name, model in (("eff", "test_efficientnet"), ("res", "test_resnet")):
        cfg = TrainConfig(src=str(data), model=model, pretrained=False, img_size=32, epochs=1, batch_size=8, workers=0,
                          device="cpu", plots=False,
                          aug="none", out=str(tmp_path / "runs"), name=name, val_split=0.34, seed=0)
        runs.append(run_train(cfg))
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", "--no-plots", *map(str, runs), "--method", "hard", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert load_spec(out).classes == ["a", "b", "c"]
    pred = tmp_path / "pred"
    res = runner.invoke(app, ["predict", str(out), "--data", str(data), "--out", str(pred), "--eval",
                              "--tta", "flip", "--workers", "0"])
    line = " ".join(res.output.split())
    assert res.exit_code == 2 and "the data it trained on, a leaked score" in line
    # the honest score named is the ensemble's own (spec.yaml / scores.csv), not its first member's validation score
    scores = load_spec(out).scores
    key = "ensemble_macro_f1_crossfit" if "ensemble_macro_f1_crossfit" in scores else "ensemble_macro_f1"
    assert (f"the honest one is the ensemble's macro-F1 on its members' common val rows"
            in line and f"{scores[key]:.4f} over {scores['common_val_images']} images" in line
            and str(out / "scores.csv") in line and "its validation macro-F1" not in line), line
    res = runner.invoke(app, ["predict", "--no-plots", str(out), "--data", str(data), "--out", str(pred),
                              "--workers", "0"])
    line = " ".join(res.output.split())
    assert res.exit_code == 0 and "trained on (their training data, not a test set)" in line, line
    assert f"the honest score is the ensemble's macro-F1 on its members' common val rows" in line, line
    test = make_image_folder(tmp_path / "test", {"a": 3, "b": 3, "c": 3}, size=(36, 36), seed=7)
    res = runner.invoke(app, ["predict", "--no-plots", str(out), "--data", str(test), "--out", str(pred), "--eval",
                              "--tta", "flip", "--workers", "0"])
    assert res.exit_code == 0, res.output
    sub = pd.read_csv(pred / "submission.csv")
    assert len(sub) == 9 and set(sub["label"]) <= {"a", "b", "c"}


def test_typed_weights_parse_or_fail_in_one_line():
    from imgcls.ensemble.voting import parse_weights
    assert parse_weights("3,1", 2).tolist() == [0.75, 0.25]
    with pytest.raises(UserError, match=r"--weights takes auto or .* \(got '0.5,x'\)"):
        parse_weights("0.5,x", 2, "auto or comma-separated numbers, e.g. 0.6,0.4")
    for text, bad in (("nan,1", "nan"), ("1,inf", "inf"), ("1e309,1", "inf"), ("-1,2", "-1.0")):
        # floats to Python, yet every member's weight was nan (or 0 beside inf): options.weights_fault's rule
        with pytest.raises(UserError) as e:
            parse_weights(text, 2)
        assert str(e.value) == (f"--weights '{text}' holds {bad}: each weight must be a finite number >= 0; it takes "
                                f"comma-separated numbers, e.g. 0.6,0.4")
    with pytest.raises(UserError, match="^--weights '0,0' weighs every member 0; give one weight > 0 at least"):
        parse_weights("0,0", 2)
    with pytest.raises(UserError, match="2 value\\(s\\) for 3 member"):
        parse_weights("1,2", 3)


def test_weights_whose_sum_overflows_are_normalised_not_zeroed():
    """--weights 1e308,1e308 (each finite) summed to inf, and normalise_weights weighed every member 0: the vote
    was 0 for every class. Weights that large are divided by the largest first; weights of a finite sum keep
    their exact shares."""
    import warnings

    import numpy as np
    from imgcls.ensemble.voting import normalise_weights, parse_weights, vote
    probs = [np.array([[0.9, 0.1]]), np.array([[0.2, 0.8]])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no overflow in the sum either
        assert parse_weights("1e308,1e308", 2).tolist() == [0.5, 0.5]
        assert normalise_weights([1.5e308, 1e308, 0], 3).tolist() == pytest.approx([0.6, 0.4, 0.0])
        assert np.allclose(vote(probs, "weighted", [1e308, 1e308]), [[0.55, 0.45]])
        assert np.allclose(vote(probs, "hard", [1e308, 1e307]), vote(probs, "hard", [10, 1]))
    assert normalise_weights([0.6, 0.4], 2).tolist() == [0.6, 0.4] and parse_weights("3,1", 2).tolist() == [0.75, 0.25]


def test_weights_a_python_caller_gives_vote_keep_the_one_weights_rule():
    """vote's weights (a Python caller's, a spec's) took nan or inf, which weighed every row nan, where --weights, a
    spec file and --head-weights refuse them: one rule (options.weights_fault) for all."""
    import numpy as np
    from imgcls.ensemble.voting import vote
    from imgcls.options import NO_WEIGHT, weights_fault
    probs = [np.array([[0.9, 0.1]]), np.array([[0.2, 0.8]])]
    assert np.allclose(vote(probs, "weighted", [3, 1]), [[0.725, 0.275]])
    for weights in ([float("nan"), 1], [1, float("inf")], [-1, 2], [0, 0]):
        with pytest.raises(UserError, match="^--weights must be finite, non-negative with a positive sum$"):
            vote(probs, "weighted", weights)
    assert weights_fault([1, 0]) == "" and weights_fault([0, 0]) == NO_WEIGHT and weights_fault([1, -1]) == "-1.0"
    assert weights_fault([0], one_positive=False) == ""
    assert weights_fault([10 ** 400]) == "a number past a float's range"
    assert weights_fault([]) == "" and weights_fault([1, float("nan")]) == "nan"


def test_out_that_is_a_folder_the_step_reads_is_refused(tmp_path):
    """`--out` = a member's run folder (or a k-fold run's fold folder, or the ensemble's own folder for predict)
    would overwrite its report.html and out-of-fold predictions: refused in one line, nothing written."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "kf", model="test_resnet", seed=2, folds=2)
    (r1 / "report.html").write_text("train's report")
    before = sorted(p.name for p in r1.iterdir())
    for out in (r1, r2 / "fold_1"):
        res = runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(out)])
        assert res.exit_code == 2 and "which this step reads" in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in r1.iterdir()) == before and (r1 / "report.html").read_text() == "train's report"
    r3 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=3, val_rows=rows, val_quality=0.3)
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r3), "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    for i in range(2):
        make_image(tmp_path / "test" / f"t{i}.png", seed=50 + i, kind="noise")
    for run, out in ((r1, r1), (tmp_path / "e", tmp_path / "e"), (r2, r2 / "fold_0")):
        res = runner.invoke(app, ["predict", str(run), "--data", str(tmp_path / "test"), "--out", str(out),
                                  "--workers", "0"])
        assert res.exit_code == 2 and "which this step reads" in res.output, res.output
    assert (r1 / "report.html").read_text() == "train's report"


def test_a_mistyped_run_name_gets_close_matches(tmp_path, monkeypatch):
    """A run name one character off named no alternative; every command that takes a run says the close names."""
    make_tiny_run(tmp_path / "outputs" / "runs" / "effnet_b4-2")
    monkeypatch.chdir(tmp_path)
    want = "(did you mean outputs/runs/effnet_b4-2?)"
    for args in (["predict", "outputs/runs/effnet_b4-3"], ["ensemble", "outputs/runs/effnet_b4", "outputs/runs/x"],
                 ["runs", "diff", "outputs/runs/efnet_b4-2", "outputs/runs/effnet_b4-2"],
                 ["export", "outputs/runs/effnet_b4", "--onnx"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and want in " ".join(res.output.split()) and "Traceback" not in res.output, \
            (args, res.output)
    res = runner.invoke(app, ["predict", "outputs/runs/zzz"])
    assert res.exit_code == 2 and "did you mean" not in res.output          # nothing close: no guess
    # a bare run name (no outputs/runs/ before it) names the run folders it may have meant
    for args in (["predict", "effnet_b4-2"], ["ensemble", "effnet_b4-3", "effnet_b4"],
                 ["runs", "diff", "efnet_b4-2", "effnet_b4-2"], ["export", "effnet_b4", "--onnx"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and want in " ".join(res.output.split()), (args, res.output)


def test_a_file_or_folder_that_is_not_a_run_is_named_for_what_it_is(tmp_path):
    """`predict RUN/onnx/x.onnx` and `ensemble splits.csv RUN` said "not an imgcls checkpoint: it holds Python
    objects other than tensors"; `predict RUN/onnx` and an ensemble given as a member said "no best.pt ... is
    training finished?"."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", seed=2, val_rows=rows, val_quality=0.3)
    onnx = r1 / "onnx"
    onnx.mkdir()
    (onnx / "best.onnx").write_bytes(b"onnx")
    table = tmp_path / "splits.csv"
    table.write_text("path,label\n")
    assert runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2),
                               "--out", str(tmp_path / "ens")]).exit_code == 0
    study = tmp_path / "tune" / "s"
    study.mkdir(parents=True)
    (study / "trials.csv").write_text("trial,state\n")
    cases = [(["predict", str(onnx / "best.onnx")], "is an ONNX export (imgcls export), which imgcls does not "
                                                      "predict with; give the run folder it was exported from"),
             (["predict", str(onnx)], "holds ONNX exports (imgcls export), which imgcls does not predict with"),
             (["ensemble", str(table), str(r1)], f"{table} is not a checkpoint; give a run folder"),
             (["ensemble", str(tmp_path / "ens"), str(r1)], f"{tmp_path / 'ens'} is an ensemble, not a run: imgcls "
                                                            f"predict {tmp_path / 'ens'} (Python: run_predict("
                                                            f"'{tmp_path / 'ens'}')) predicts with it"),
             (["ensemble", str(study), str(r1)], "is an imgcls tune study folder, not a run; give a run folder "
                                                 "(outputs/runs/NAME), or a trial_NNNN of the study once it trained "
                                                 "one")]
    for args, msg in cases:
        res = runner.invoke(app, [*args, *(["--data", str(tmp_path / "data")] if args[0] == "predict" else [])])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and msg in " ".join(res.output.split()), (args, res.output)


def test_a_dataset_folder_given_as_the_run_is_named_for_what_it_is(tmp_path):
    """`imgcls predict data/test` (the images typed where the run goes) said "no best.pt in data/test ...; is
    training finished?"; so did an ImageFolder or a clean output given to ensemble or export."""
    from conftest import make_image_folder
    test = tmp_path / "test"
    for i in range(3):
        make_image(test / f"t{i}.png", seed=i)
    folder = make_image_folder(tmp_path / "raw", {"a": 2, "b": 2})
    run = make_tiny_run(tmp_path / "runs" / "r")
    for args, data in ((["predict", str(test)], test), (["ensemble", str(run), str(folder)], folder),
                       (["export", str(folder), "--onnx"], folder)):
        res = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
        flat = " ".join(res.output.split())
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, (args, res.output)
        assert f"{data} is a dataset folder (it holds images), not a run" in flat and "--data" in flat, flat
        assert "is training finished" not in flat
    assert not (tmp_path / "o").exists()


def test_a_folder_of_runs_given_as_the_run_names_them(tmp_path):
    """`imgcls predict outputs/ensembles` (the folder of ensembles: their report PNGs one folder down) said it was
    "a dataset folder (it holds images)"; a folder of runs said "no best.pt ...; is training finished?"."""
    out = tmp_path / "outputs"
    for name in ("a", "b"):
        (out / "runs" / name).mkdir(parents=True)
        (out / "runs" / name / "config.yaml").write_text("model: test_resnet\n")
        (out / "runs" / name / "train.log").write_text("")     # a run as outputs.output_kind tells one
    (out / "ensembles" / "e1").mkdir(parents=True)
    (out / "ensembles" / "e1" / "spec.yaml").write_text("kind: imgcls-ensemble\n")
    make_image(out / "ensembles" / "e1" / "confusion_matrix.png", seed=0)
    for folder, named in ((out / "ensembles", [out / "ensembles" / "e1"]),
                          (out / "runs", [out / "runs" / "a", out / "runs" / "b"]),
                          (out, [out / "ensembles" / "e1", out / "runs" / "a", out / "runs" / "b"])):
        res = runner.invoke(app, ["predict", str(folder), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o")])
        flat = " ".join(res.output.split())
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert f"{folder} is a folder of runs or ensembles, not one; give one of them ({', '.join(map(str, named))})" \
            in flat, flat
    assert not (tmp_path / "o").exists()


def test_report_labels_every_score_over_the_rows_the_weights_were_fitted_on(tmp_path):
    """--weights auto minimises log-loss on the common validation rows: the log-loss, the ensemble's per-class F1 and
    its confusion matrix are over those very rows and say so, as the macro-F1 beside them does (they stood
    unlabelled); equal weights (nothing fitted) are not called optimistic."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.3)
    for method, fitted in (("weighted", True), ("soft", False)):
        out = tmp_path / method
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", method, "--out", str(out)])
        assert res.exit_code == 0, res.output
        flat = " ".join((out / "report.html").read_text().split())
        assert ("ensemble log-loss on them (weights fitted on these rows: optimistic)" in flat) is fitted
        assert "ensemble log-loss on them" in flat
        assert ("Per-class F1 on the common val rows <span class=\"muted\">(ensemble column: weights "
                "fitted on these rows, optimistic)</span>" in flat) is fitted


def test_predict_eval_on_the_rows_the_weights_were_fitted_on_says_so(tmp_path):
    """`predict ENSEMBLE --data VAL --eval` with --weights auto fitted on those very validation rows printed and
    reported the score as a plain evaluation (0.3391 for an ensemble whose cross-fitted score was 0.3144): the
    terminal, predict.json and report.html now say how many of the scored rows chose the weights."""
    from conftest import make_image_folder
    data = make_image_folder(tmp_path / "val", {"a": 4, "b": 4, "c": 4}, size=(36, 36))
    rows = [(str(data), f"{c}/{i:03d}.png", c) for c in "abc" for i in range(4)]
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.3)
    for method, n in (("weighted", 12), ("soft", 0)):
        ens = tmp_path / f"ens_{method}"
        assert runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", method,
                                   "--out", str(ens)]).exit_code == 0
        pred = tmp_path / f"pred_{method}"
        res = runner.invoke(app, ["predict", "--no-plots", str(ens), "--data", str(data), "--out", str(pred), "--eval",
                                  "--workers", "0"])
        assert res.exit_code == 0, res.output
        said = " ".join(res.output.split())
        flat = " ".join((pred / "report.html").read_text().split())
        note = "all of these rows are the ones the ensemble&#39;s --weights auto was fitted on: optimistic"
        assert json.loads((pred / "predict.json").read_text())["eval"]["n_weights_fitted"] == n
        assert (note in flat) is bool(n), flat
        assert ("--weights auto was fitted on: optimistic" in said) is bool(n), said
    other = make_image_folder(tmp_path / "test", {"a": 2, "b": 2, "c": 2}, size=(36, 36), seed=9)
    res = runner.invoke(app, ["predict", "--no-plots", str(tmp_path / "ens_weighted"), "--data", str(other), "--out",
                              str(tmp_path / "pred_other"), "--eval", "--workers", "0"])
    assert res.exit_code == 0 and "fitted on: optimistic" not in " ".join(res.output.split()), res.output


def test_predict_eval_with_a_malformed_oof_predictions_csv_is_one_line(tmp_path, monkeypatch):
    """`predict ENSEMBLE --eval` reads the ensemble's oof_predictions.csv (the rows its --weights auto was fitted on)
    with plain pandas, after the model ran, and took a malformed file (a row with more fields than the header) for
    one naming no row: the score over the very rows that chose the weights was said as a plain evaluation. It is
    read by rundir.read_run_csv before the model runs: one line naming the file and the fix, exit 2, nothing
    written."""
    import imgcls.predict as pr
    from conftest import make_image_folder
    from test_cli import one_error_line
    data = make_image_folder(tmp_path / "val", {"a": 4, "b": 4, "c": 4}, size=(36, 36))
    rows = [(str(data), f"{c}/{i:03d}.png", c) for c in "abc" for i in range(4)]
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.3)
    ens = tmp_path / "ens"
    assert runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "weighted",
                               "--out", str(ens)]).exit_code == 0
    bad = ens / "oof_predictions.csv"
    lines = bad.read_text().splitlines()
    bad.write_text("\n".join([*lines[:2], lines[2] + ",extra", *lines[3:]]) + "\n")
    monkeypatch.setattr(pr, "predict_members", lambda *a, **k: pytest.fail("the model ran before the check"))
    res = runner.invoke(app, ["predict", str(ens), "--data", str(data), "--out", str(tmp_path / "pred"), "--eval",
                              "--workers", "0"])
    line = one_error_line(res)
    fix = "imgcls ensemble wrote it: restore it from a backup, or build the ensemble again"
    assert f"the ensemble's out-of-fold predictions {bad}: line 3 has" in line and line.endswith(f"; {fix}"), line
    assert not (tmp_path / "pred").exists()


def test_report_members_table_names_its_columns_as_its_note(tmp_path):
    """The note above the members table explains `own val` and `common val`, the terminal's columns; the table's
    own headers read val_images / val_macro_f1 / common_macro_f1, and a k-fold member's out-of-fold rows were
    said in the terminal only."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "single", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "kf", seed=2, folds=2, val_rows=rows, val_quality=0.3)
    out = tmp_path / "ens"
    assert runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(out)]).exit_code == 0
    html = (out / "report.html").read_text()
    flat = " ".join(html.split())
    assert ("<th>member</th><th>checkpoints</th><th>weight</th><th>own val images</th><th>own val macro-F1</th>"
            "<th>common val macro-F1</th>") in flat
    assert "val_macro_f1" not in html and "common_macro_f1" not in html
    assert "(out-of-fold for the k-fold member(s) kf: each row scored by the fold that did not train on it)" in flat


def test_a_rebuild_into_a_typed_out_names_what_keeps_both(tmp_path, monkeypatch):
    """The --help examples build `--out outputs/ensembles/blend` twice: the second said '(--name NAME keeps both)',
    but --name only names the ensemble when --out is given (the folder stays --out). With --out typed, another --out
    keeps both; without it, --name still does."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.1)
    monkeypatch.chdir(tmp_path)
    blend = Path("outputs") / "ensembles" / "blend"
    for _ in range(2):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(blend)])
        assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert f"{blend} holds an earlier ensemble; this run replaces it once its files are all written (another " \
           f"--out FOLDER keeps both)" in said, said
    assert "--name NAME keeps both" not in said
    for _ in range(2):
        res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--name", "mix"])
        assert res.exit_code == 0, res.output
    assert "holds an earlier ensemble; this run replaces it once its files are all written (--name NAME keeps " \
           "both)" in " ".join(res.output.split())


def test_an_ensemble_of_one_run_is_refused(tmp_path):
    """`imgcls ensemble RUN` was built: an 'ensemble' that votes over one member, a folder predicting as the run
    itself. README: voting over runs and folds, `ensemble RUN RUN ...`; now one line naming the run and
    `imgcls predict RUN`, exit 2, nothing written."""
    kf = make_tiny_run(tmp_path / "runs" / "kf", folds=2)
    for run in (make_tiny_run(tmp_path / "runs" / "one"), kf):
        res = runner.invoke(app, ["ensemble", str(run), "--out", str(tmp_path / "e")])
        flat = " ".join(res.output.split())
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
        assert f"needs two or more runs (got one: {run})" in flat and f"imgcls predict {run}" in flat, flat
    assert not (tmp_path / "e").exists()


def test_suggested_commands_quote_a_path_with_a_space(tmp_path):
    """A message suggesting a command printed the path bare ('imgcls train --resume outputs/runs/my kf'), so the
    pasted line gave the shell two arguments; each path in a suggested command is shell-quoted now."""
    import shlex
    rows = _val_rows(tmp_path / "data")
    one = make_tiny_run(tmp_path / "my runs" / "run a", seed=1, val_rows=rows)
    r2 = make_tiny_run(tmp_path / "my runs" / "run b", seed=2, val_rows=rows)
    kf = make_tiny_run(tmp_path / "my runs" / "my kf", folds=2, val_rows=rows)
    (kf / "oof_score.json").unlink()                           # training stopped before its last fold

    def suggested(argv, prefix):
        res = runner.invoke(app, argv)
        flat = " ".join(res.output.split())
        assert prefix in flat, res.output
        return shlex.split(flat[flat.index(prefix):].split(" (Python: ")[0].split(")")[0].split(",")[0])
    assert suggested(["ensemble", str(one)], "imgcls predict ") == ["imgcls", "predict", str(one)]
    assert suggested(["ensemble", str(one), str(kf)], "imgcls train --resume ") == \
        ["imgcls", "train", "--resume", str(kf)]
    out = tmp_path / "my ens"
    assert suggested(["ensemble", str(one), str(r2), "--out", str(out)], "use: imgcls predict ")[1:] == \
        ["imgcls", "predict", str(out)]


def test_the_terminal_table_s_common_val_column_names_its_rows(tmp_path):
    """`ensemble KFOLD SINGLE --method weighted --weights auto`: the line above the table said "fitted weights on N
    common validation images", the table's "common val" column, whose scores are over those N rows, said no count
    (own val names each member's)."""
    import re
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "single", seed=1, val_rows=rows[:20], val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "kf", seed=2, folds=2, val_rows=rows, val_quality=0.3)
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r2), str(r1), "--method", "weighted", "--weights", "auto",
                              "--out", str(tmp_path / "ens")])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    n = int(re.search(r"fitted weights on (\d+) common val images", flat).group(1))
    assert n == 20 and re.search(rf"common val\W*\({n}\)", flat), res.output


def test_kfold_members_common_rows_are_named_oof_as_runs_names_them(tmp_path):
    """`ensemble KFOLD KFOLD`: the table's header said `common val (N)` where `imgcls runs` said `common OOF (N)` for
    the same ensemble's score over the same rows (every member's rows out-of-fold). One rule (runs.common_rows) names
    them in the table, the line above it, the report and the leaderboard."""
    import re
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "kf1", seed=1, folds=2, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "kf2", seed=2, folds=2, val_rows=rows, val_quality=0.3)
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--method", "weighted", "--weights", "auto",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "fitted weights on 24 common OOF images" in flat, res.output
    assert re.search(r"common OOF\W*\(24\)", flat) and "common val" not in flat, res.output
    html = " ".join((out / "report.html").read_text().split())
    assert "<th>common OOF macro-F1</th>" in html and "common val" not in html
    assert "out-of-fold: every member is a k-fold set" in html
    board = runner.invoke(app, ["runs", str(out), "--csv", "-"])
    assert board.exit_code == 0 and "common OOF" in board.output, board.output


def test_a_members_recorded_config_is_declared_and_read_once(tmp_path, monkeypatch):
    """predict cached a member's config.yaml on an attribute the Member dataclass did not declare
    (m._recorded_config, set from outside). It is now Member.recorded_config, a cached_property: read once per
    member, None where nothing is known, and no part of the member's fields (equality, repr)."""
    from functools import cached_property

    from imgcls.ensemble import Member
    from imgcls.train.config import TrainConfig
    (tmp_path / "run").mkdir()
    TrainConfig(model="test_resnet", max_pixels=1234).save(tmp_path / "run" / "config.yaml")
    loads, real = [], TrainConfig.load
    monkeypatch.setattr(TrainConfig, "load", classmethod(lambda cls, p: loads.append(p) or real(p)))
    assert isinstance(vars(Member)["recorded_config"], cached_property)
    m = Member("run", tmp_path / "run", [tmp_path / "run" / "best.pt"])
    assert m.recorded_config.max_pixels == 1234 and m.recorded_config is m.recorded_config
    assert loads == [tmp_path / "run" / "config.yaml"]
    assert m == Member("run", tmp_path / "run", [tmp_path / "run" / "best.pt"]) and "max_pixels" not in repr(m)
    bare = Member("x", tmp_path / "x.pt", [tmp_path / "x.pt"])         # a bare checkpoint: nothing recorded
    assert bare.recorded_config is None and bare.recorded_config is None and len(loads) == 2


def test_ensemble_report_names_the_profile_class_ids(tmp_path):
    """The ensemble report's per-class F1 table and confusion matrices named a profile ensemble's classes 0..17
    only: the table now says what each is (4: wear, female, 30-59), from the age bands its members recorded."""
    import html
    rows = [(str(tmp_path / "data"), f"p{i:03d}.png", str(i % 18)) for i in range(36)]
    runs = [make_tiny_run(tmp_path / "runs" / f"m{k}", multi=True, model="test_resnet", seed=k, val_rows=rows,
                          val_quality=0.5, age_bands=[30, 60]) for k in (1, 2)]
    out = tmp_path / "ens"
    res = runner.invoke(app, ["ensemble", "--no-plots", *map(str, runs), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    page = html.unescape((out / "report.html").read_text()).replace("\n", "")
    assert "<td>4</td><td>wear, female, 30-59</td>" in page and "<td>17</td><td>not_wear, female, >=60</td>" in page


def test_an_ensemble_of_profile_class_runs_names_predict_s_mask_format(tmp_path):
    """`ensemble RUN RUN` of --heads multi runs (the mask competition's 18 classes): its line said `imgcls predict
    ENS`, whose default id,label wrote the competition's eval/ as id,label, not ImageID,ans; it names --format mask
    now, as a --combine profile ensemble's does. Runs of other classes, or of other age bands, keep the bare line."""
    rows = [(str(tmp_path / "data"), f"p{i:03d}.png", str(i % 18)) for i in range(36)]

    def line(runs, out):
        res = runner.invoke(app, ["ensemble", *map(str, runs), "--out", str(out)])
        assert res.exit_code == 0, res.output
        flat = " ".join(res.output.split())
        return flat[flat.index("(use: ") + 6:].split(" (Python: ")[0]
    prof = [make_tiny_run(tmp_path / "runs" / f"m{k}", multi=True, model="test_resnet", seed=k, val_rows=rows,
                          val_quality=0.5, age_bands=[30, 60]) for k in (1, 2)]
    assert line(prof, tmp_path / "e1") == f"imgcls predict {tmp_path / 'e1'} --format mask"
    other = [make_tiny_run(tmp_path / "runs" / f"o{k}", multi=True, model="test_resnet", seed=k, val_rows=rows,
                           val_quality=0.5, age_bands=[25, 50]) for k in (1, 2)]
    assert line(other, tmp_path / "e2") == f"imgcls predict {tmp_path / 'e2'}"
    abc = _val_rows(tmp_path / "d2")
    plain = [make_tiny_run(tmp_path / "runs" / f"p{k}", seed=k, val_rows=abc) for k in (1, 2)]
    assert line(plain, tmp_path / "e3") == f"imgcls predict {tmp_path / 'e3'}"


def test_a_member_tune_cleared_is_named_by_a_normalised_path(tmp_path, monkeypatch):
    """An ensemble built from a tune trial whose checkpoints `tune --keep` deleted afterwards: predicting it said
    `outputs/ensembles/soft-x/../../tune/s1/trials.csv`, the member's path as spec.yaml stores it (relative to the
    spec) joined to the spec's folder. Every path of the line is the member's own, normalised."""
    monkeypatch.chdir(tmp_path)
    trial = tmp_path / "outputs" / "tune" / "s1" / "trial_0000"
    trial.mkdir(parents=True)
    (trial / "config.yaml").write_text("lr: 0.001\n")
    pd.DataFrame({"trial": [0], "checkpoints": ["removed (--keep best-1)"]}).to_csv(trial.parent / "trials.csv",
                                                                                   index=False)
    spec = Path("outputs") / "ensembles" / "soft-x" / "spec.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text(yaml.safe_dump({"kind": "imgcls-ensemble", "method": "soft", "classes": ["a", "b"], "members": [
        {"name": "trial_0000", "run": "../../tune/s1/trial_0000", "checkpoints": ["../../tune/s1/trial_0000/best.pt"]}
    ]}))
    with pytest.raises(UserError, match="imgcls tune deleted this trial's checkpoints") as e:
        load_spec(spec.parent)
    said = str(e.value)
    assert "/../" not in said and f"{trial.parent / 'trials.csv'}: removed (--keep best-1)" in said, said
    assert f"--config {trial / 'config.yaml'} " in said, said


def test_the_score_table_says_which_classes_the_common_rows_lack(tmp_path):
    """The common column's macro-F1 is over every class of the task: a class no common validation row has (a class
    with one image, train in every fold) counts with F1 0. train says so of its val; the ensemble table did not."""
    rows = _val_rows(tmp_path / "data", n=12, classes="ab?")
    rows = [(r, p.replace("?", "a"), "a" if lab == "?" else lab) for r, p, lab in rows]     # no row of class c
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.3)
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(tmp_path / "ens")])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert ("1 of 3 classes have no common validation rows (c): each counts in the macro-F1 with F1 0 (the mean is "
            "over every class of the task)") in said, said
    full = _val_rows(tmp_path / "data")
    r3 = make_tiny_run(tmp_path / "runs" / "e3", seed=1, val_rows=full)
    r4 = make_tiny_run(tmp_path / "runs" / "e4", model="test_resnet", seed=2, val_rows=full)
    res = runner.invoke(app, ["ensemble", "--no-plots", str(r3), str(r4), "--out", str(tmp_path / "ens2")])
    assert res.exit_code == 0 and "no common validation rows" not in res.output


@pytest.mark.parametrize("earlier", [False, True])
def test_an_ensemble_stopped_while_writing_leaves_no_spec_without_its_scored_rows(tmp_path, monkeypatch, earlier):
    """ensemble wrote spec.yaml (removing an earlier build's oof_predictions.csv), then scores.csv, then
    oof_predictions.csv in place: a Ctrl-C between them left a spec whose scored rows were gone (predict --eval
    reads them to leave out the rows --weights auto was fitted on: none left out, an optimistic score unsaid), or
    the earlier build's beside the new spec. The three are written as one set: a stop leaves the earlier build
    whole (or no folder), and the rerun writes its own."""
    import imgcls.fsutil
    from conftest import tree_snapshot
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.1)
    out = tmp_path / "ens"
    argv = ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(out), "-q"]
    if earlier:
        assert runner.invoke(app, argv + ["--method", "weighted", "--weights", "auto"]).exit_code == 0
    before = tree_snapshot(out) if earlier else None
    real = imgcls.fsutil.write_table

    def stop_at_the_oof(df, path):
        if Path(path).name == "oof_predictions.csv":
            raise KeyboardInterrupt
        return real(df, path)
    monkeypatch.setattr(imgcls.fsutil, "write_table", stop_at_the_oof)
    r = runner.invoke(app, argv)
    assert r.exit_code == 130 and "Traceback" not in r.output, r.output
    assert (tree_snapshot(out) == before) if earlier else not out.exists(), sorted(p.name for p in out.iterdir())
    monkeypatch.undo()
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    assert {"spec.yaml", "scores.csv", "oof_predictions.csv", "per_class.csv"} <= {p.name for p in out.iterdir()}


def test_an_ensemble_s_report_and_confusion_pngs_are_written_with_its_set(tmp_path, monkeypatch):
    """ensemble wrote report.html and its confusion PNGs after the set (spec.yaml, scores.csv, the scored rows) was
    placed: a Ctrl-C while drawing them left the new spec beside the earlier build's report and figures, and a
    build whose members share no row (no confusion matrix) left the earlier build's PNGs beside its report. They
    are written with the set: a stop leaves the earlier build byte for byte, and the earlier PNGs go with it."""
    import imgcls.metrics
    from conftest import tree_snapshot
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.1)
    r3 = make_tiny_run(tmp_path / "runs" / "c", seed=3, val_rows=_val_rows(tmp_path / "other"), val_quality=0.3)
    out = tmp_path / "ens"
    assert runner.invoke(app, ["ensemble", str(r1), str(r2), "--out", str(out), "-q"]).exit_code == 0
    before = tree_snapshot(out)
    assert {"report.html", "confusion_matrix.png", "confusion_matrix_normalized.png"} <= set(before)

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(imgcls.metrics, "confusion_pngs", stop)
    r = runner.invoke(app, ["ensemble", str(r1), str(r2), "--method", "hard", "--out", str(out), "-q"])
    assert r.exit_code == 130 and tree_snapshot(out) == before, r.output
    monkeypatch.undo()
    r = runner.invoke(app, ["ensemble", str(r1), str(r3), "--out", str(out), "-q"])      # no shared row
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "scores.csv", "spec.yaml"]


def test_an_ensemble_stopped_among_its_renames_leaves_no_spec_beside_another_build_s_files(tmp_path, monkeypatch):
    """spec.yaml, the file predict and `imgcls runs` read an ensemble by (and its rerun knows its folder by), was
    renamed into place after the build's other files: a stop among the renames left the earlier build's spec beside
    the new oof_predictions.csv (predict --eval left out the new build's rows for the earlier one's weights), report
    and figures. The earlier spec goes first and the new one comes last: wherever the renames stop, a spec there
    has its own build's files beside it, whole; and the rerun replaces what the stopped one left, saying so."""
    import shutil

    from conftest import stop_after_first_rename
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.1)
    out = tmp_path / "ens"
    argv = ["ensemble", str(r1), str(r2), "--out", str(out), "--name", "blend", "-q"]
    assert runner.invoke(app, argv + ["--method", "weighted", "--weights", "auto"]).exit_code == 0
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    seen = 0
    for renames in range(1, 10):
        shutil.rmtree(out)
        out.mkdir()
        for name, data in old.items():
            (out / name).write_bytes(data)
        stop_after_first_rename(monkeypatch, renames)
        r = runner.invoke(app, argv)
        monkeypatch.undo()
        if r.exit_code == 0:        # fewer renames than that: placed whole
            break
        assert r.exit_code == 130, r.output
        seen += 1
        left = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
        r = runner.invoke(app, argv[:-1])
        assert r.exit_code == 0, r.output       # the rerun takes what the stopped one left as its own, saying so
        assert f"{out} holds an earlier ensemble; this run replaces it once its files are all written" \
            in " ".join(r.output.split()), r.output
        new = {p.name: p.read_bytes() for p in out.iterdir()}
        if "spec.yaml" in left:
            assert left == (old if left["spec.yaml"] == old["spec.yaml"] else new), (renames, sorted(left))
    assert seen >= 6


def test_runs_shows_the_scores_an_ensemble_recorded_equal_to_re_scoring_its_rows(tmp_path, monkeypatch):
    """`imgcls runs` re-scored every ensemble from its oof_predictions.csv with sklearn (~1-4 s of its start-up):
    imgcls ensemble recorded its macro-F1 and row count, not its accuracy nor per-class scores. It now records them
    (spec.yaml's ensemble_accuracy, per_class.csv as train's), and runs shows them, equal to re-scoring the rows to
    the last digit: a soft, a hard and a profile ensemble."""
    from imgcls import metrics
    from imgcls.runs import find_runs
    rows = _val_rows(tmp_path / "data", n=30)
    r1 = make_tiny_run(tmp_path / "runs" / "r1", seed=1, val_rows=rows, val_quality=0.5)
    r2 = make_tiny_run(tmp_path / "runs" / "r2", model="test_resnet", seed=2, folds=2, val_rows=rows,
                       val_quality=0.2)
    prof = [(str(tmp_path / "data"), f"p{i:03d}.png", str(i % 18)) for i in range(36)]
    m = [make_tiny_run(tmp_path / "runs" / f"m{k}", multi=True, model="test_resnet", seed=k, val_rows=prof,
                       val_quality=0.5, age_bands=[30, 60]) for k in (1, 2)]
    ens = tmp_path / "outputs"
    for name, args in (("soft", [r1, r2]), ("hard", [r1, r2, "--method", "hard", "--weights", "1,2"]),
                       ("profile", m)):
        res = runner.invoke(app, ["ensemble", "--no-plots", *map(str, args), "--out", str(ens / name), "-q"])
        assert res.exit_code == 0, res.output
        assert (ens / name / "per_class.csv").is_file()
    expected = {}
    for name in ("soft", "hard", "profile"):
        v = pd.read_csv(ens / name / "oof_predictions.csv", dtype={"label": str, "pred": str})
        classes = [c[2:] for c in v.columns if c.startswith("p_")]
        y, p = v["label"].to_numpy(), v["pred"].to_numpy()
        expected[name] = metrics.scores(y, p, classes), metrics.per_class(y, p, classes)

    def rescored(*a, **k):
        raise AssertionError("re-scored an ensemble that records its scores")
    monkeypatch.setattr(metrics, "scores", rescored)
    monkeypatch.setattr(metrics, "per_class", rescored)
    found = {r.name: r for r in find_runs(ens)}
    for name, (s, pc) in expected.items():
        r = found[name]
        assert (r.val_macro_f1, r.val_acc, r.n_val) == (s["macro_f1"], s["accuracy"], s["n"]), name
        pd.testing.assert_frame_equal(r.per_class, pc)


def test_a_rebuild_sweeps_the_temporary_files_a_killed_build_left(tmp_path):
    """A build killed (kill -9) while it wrote its set left the temporary files of spec.yaml (the set's `beside`
    file, in the folder) and of its placing journal, and every rebuild into the folder left them there
    (ensemble swept none, where predict, split, eda and clean sweep theirs). output_set sweeps those of the set's
    file names while the build holds the folder."""
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "a", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "b", seed=2, val_rows=rows, val_quality=0.1)
    out = tmp_path / "ens"
    argv = ["ensemble", "--no-plots", str(r1), str(r2), "--out", str(out), "-q"]
    assert runner.invoke(app, argv).exit_code == 0
    killed = [out / ".spec.yaml.k9k9k9k9.tmp.yaml", out / "..ensemble.placing.json.k9k9k9k9.tmp.json"]
    for p in killed:
        p.write_text("kind: imgcls-ensemble\n")
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    assert not [p.name for p in killed if p.exists()]


def test_the_score_tables_title_and_caption_are_left_aligned_as_every_other_table(capsys):
    """`imgcls ensemble A B C --method hard` printed its table's title 'validation macro-F1' and its caption
    ('weights fitted on these rows: optimistic ...') centred, the caption's second line indented by half the
    table; `imgcls runs` and `runs diff` align theirs left. So does the ensemble's now."""
    import pandas as pd
    from imgcls.ensemble.table import print_scores
    rows = [("A", 1, 0.5, 0.17, 0.17, 114), ("B", 1, 0.5, 0.2, 0.2, 114),
            ("ensemble (hard), weights fitted on these rows", 2, 1.0, 0.24, 0.24, 114),
            ("ensemble (hard), weights cross-fitted (5 parts of these rows)", 2, 1.0, 0.21, 0.21, 114)]
    print_scores(pd.DataFrame(rows, columns=["member", "checkpoints", "weight", "val_macro_f1", "common_macro_f1",
                                             "val_images"]), 114)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("validation macro-F1"), lines
    assert any(ln.startswith("weights fitted on these rows: optimistic") for ln in lines), lines


def test_ensemble_says_what_it_does_on_a_terminal_before_its_table(tmp_path, monkeypatch):
    """ensemble printed nothing for ~8.6 s on a terminal before its table, 2.7 s of it drawing the confusion
    matrices of its report: a spinner says so meanwhile (piped, its output is unchanged: the other tests)."""
    import io
    from rich.console import Console
    from imgcls import console
    from imgcls.ensemble import build_ensemble
    _, r1, r2 = _run_and_kfold_set(tmp_path)
    buf = io.StringIO()
    monkeypatch.setattr(console, "console", Console(file=buf, force_terminal=True, width=200, markup=False))
    build_ensemble([r1, r2], out=tmp_path / "ens", plots=False)
    assert "writing the ensemble's files and report" in buf.getvalue()
    assert "spinner" not in console._state


def test_a_stopped_fold_given_alone_is_finished_by_resuming_its_set(tmp_path):
    """`ensemble done KF/fold_1`, fold_1 stopped at epoch 2 of 6: the warning said to finish it with
    `imgcls train --resume KF/fold_1`, which trains a new k-fold set inside the fold's folder (KF/fold_1/fold_0, ...;
    the fold's config.yaml records --folds) and leaves the fold stopped. The command resumes the set, KF."""
    rows = _val_rows(tmp_path / "data")
    done = mark_training(make_tiny_run(tmp_path / "runs" / "done", seed=1, val_rows=rows),
                         done=4, epochs=4, best=3, finished=True)
    kf = make_tiny_run(tmp_path / "runs" / "kf", seed=2, folds=2)
    (kf / "oof_score.json").unlink()                    # the set's training stopped in its last fold
    (kf / "config.yaml").write_text(yaml.safe_dump({"model": "test_efficientnet", "img_size": 32, "folds": "all",
                                                    "epochs": 6}))
    fold = mark_training(kf / "fold_1", done=2, epochs=6, best=1)
    (fold / "val_predictions.csv").write_text((done / "val_predictions.csv").read_text())
    res = runner.invoke(app, ["ensemble", "--no-plots", str(done), str(fold), "--out", str(tmp_path / "e")])
    flat = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert f"warning: {fold} is a stopped run (2/6 epochs)" in flat, flat
    assert f"finish it with imgcls train --resume {kf} (Python: " in flat, flat


def test_a_stray_fold_given_as_a_member_is_not_advised_as_one(tmp_path):
    """A fold_2 copied into a 2-fold set is left out of the set's checkpoints, said with the way to predict with it
    too: `imgcls ensemble KF KF/fold_2`. Given that command, the warning advised running it. The advice is said
    where the stray fold is not a member already."""
    import shutil
    _, r1, kf = _run_and_kfold_set(tmp_path)
    shutil.copytree(kf / "fold_1", kf / "fold_2")
    shutil.copy(kf / "val_predictions.csv", kf / "fold_2" / "val_predictions.csv")

    def said(*runs, out):
        res = runner.invoke(app, ["ensemble", "--no-plots", *map(str, runs), "--out", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
        return " ".join(res.output.split())
    left_out = f"warning: fold_2 in {kf} left out: not one of the set's folds (it trained fold_0, fold_1)"
    flat = said(kf, kf / "fold_2", out="e1")
    assert left_out in flat and "to predict with it too" not in flat, flat
    flat = said(kf, r1, out="e2")
    assert (f"{left_out}; to predict with it too, give it as an ensemble member: imgcls ensemble {kf} "
            f"{kf / 'fold_2'} (Python: ") in flat, flat


def test_a_plain_run_named_fold_0_is_a_member_named_fold_0_not_a_fold_of_its_parent(tmp_path):
    """member_name took any fold_<k> folder for a k-fold set's fold: a plain run trained with `--name fold_0` into a
    folder of runs was member 'runs.fold_0', one trained into a plain run's folder 'A.fold_0'. Only a fold of a set
    (its parent's config.yaml records --folds: run_names.fold_set) is named by its set."""
    from imgcls.ensemble.spec import member_name
    from imgcls.train.config import TrainConfig
    plain, kf = tmp_path / "runs" / "A", tmp_path / "runs" / "KF"
    for parent, folds in ((plain, None), (kf, "all")):
        TrainConfig(name=parent.name, folds=folds).save((parent / "fold_0").mkdir(parents=True) or
                                                        parent / "config.yaml")
        TrainConfig(name="fold_0", folds=folds).save(parent / "fold_0" / "config.yaml")
    (tmp_path / "runs" / "fold_0").mkdir()
    TrainConfig(name="fold_0").save(tmp_path / "runs" / "fold_0" / "config.yaml")
    assert member_name(tmp_path / "runs" / "fold_0") == "fold_0"
    assert member_name(plain / "fold_0") == "fold_0"
    (plain / "fold_0" / "last.pt").touch()
    assert member_name(plain / "fold_0" / "last.pt") == "fold_0.last"
    assert member_name(kf / "fold_0") == "KF.fold_0"


def test_members_of_one_name_are_named_apart_by_their_folders(tmp_path, monkeypatch):
    """Names were made unique only where they clashed: runs a/x b/x c/x_1 became x_0, x_1, x_1 (two members of one
    name in spec.yaml), and two studies' trial_0000 became trial_0000_0 / trial_0000_1, which says nothing. A
    clashing name gets the folders above its run until it is unique."""
    from imgcls.ensemble.spec import member_from_run, unique_member_names
    rows = _val_rows(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    for i, p in enumerate(("runs/a/x", "runs/b/x", "runs/c/x_1", "tune/s1/trial_0000", "tune/s2/trial_0000")):
        make_tiny_run(tmp_path / p, seed=i, val_rows=rows)
    res = runner.invoke(app, ["ensemble", "--no-plots", "runs/a/x", "runs/b/x", "runs/c/x_1"])
    assert res.exit_code == 0, res.output
    ens = tmp_path / "outputs" / "ensembles" / "soft-a.x+b.x+x_1"
    assert [m.name for m in load_spec(ens).members] == ["a.x", "b.x", "x_1"], res.output
    members = [member_from_run(p) for p in ("tune/s1/trial_0000", "tune/s2/trial_0000")]
    unique_member_names(members)
    assert [m.name for m in members] == ["s1.trial_0000", "s2.trial_0000"]


def test_build_ensemble_s_which_of_another_value_is_one_line_before_any_run_is_read(tmp_path, monkeypatch):
    """which='latest' (a keyword no flag sets) raised find_checkpoints' ValueError, naming that function, once the
    runs were read; now build_ensemble's one line, before any member is read."""
    import imgcls.ensemble.build as eb
    from imgcls.ensemble import build_ensemble
    monkeypatch.setattr(eb, "member_from_run", lambda *a, **k: pytest.fail("a run read before the check"))
    for which, shown in (("latest", "'latest'"), (None, "None")):
        with pytest.raises(UserError) as e:
            build_ensemble([tmp_path / "a", tmp_path / "b"], which=which, out=tmp_path / "ens")
        assert str(e.value) == f"build_ensemble's which must be one of: best, last (got {shown})"
    assert not (tmp_path / "ens").exists()


def test_build_ensemble_takes_its_weights_as_a_list_of_numbers(tmp_path):
    """build_ensemble(runs, weights=[0.3, 0.7]) was refused ("--weights takes auto or comma-separated numbers ...
    (got '[0.3, 0.7]')"): it took only the text '0.3,0.7', while TrainConfig.head_weights takes a list. A list or
    tuple of numbers is those weights; a list of anything else is one line giving the Python form."""
    from imgcls.ensemble import build_ensemble
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows)
    typed = build_ensemble([r1, r2], method="weighted", weights="0.3,0.7", out=tmp_path / "typed", plots=False)
    # an array too (fit_weights' own): the check of the text read its truth value, a ValueError
    for i, given in enumerate(([0.3, 0.7], (0.3, np.float64(0.7)), [3, 7], np.array([0.3, 0.7]))):
        spec = build_ensemble([r1, r2], method="weighted", weights=given, out=tmp_path / f"list{i}", plots=False)
        assert spec.weights == pytest.approx(typed.weights) and spec.method == "weighted", spec.weights
    assert typed.weights == pytest.approx([0.3, 0.7])
    with pytest.raises(UserError) as e:
        build_ensemble([r1, r2], method="weighted", weights=["a", "b"], out=tmp_path / "bad")
    assert str(e.value) == ("--weights takes auto or comma-separated numbers, e.g. 0.6,0.4 (Python: weights=[0.6, "
                            "0.4]) (got ['a', 'b'])")
    assert not (tmp_path / "bad").exists()


def test_build_ensemble_returns_its_paths_absolute_and_the_cli_prints_its_folder_as_named(tmp_path, monkeypatch):
    """build_ensemble with relative runs and out returned an EnsembleSpec whose spec.path and members' paths were
    relative to the working folder (run_predict's are absolute): a notebook that changed folder lost them. They are
    absolute; `imgcls ensemble` still prints the folder as --out named it (the default one too)."""
    from imgcls.ensemble import build_ensemble
    rows = _val_rows(tmp_path / "data")
    make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows)
    make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows)
    monkeypatch.chdir(tmp_path)
    spec = build_ensemble(["runs/effnet", "runs/resnet"], out="ens", plots=False)
    assert spec.path == tmp_path / "ens" / "spec.yaml"
    assert [m.run for m in spec.members] == [tmp_path / "runs" / "effnet", tmp_path / "runs" / "resnet"]
    assert all(c.is_absolute() for m in spec.members for c in m.checkpoints)
    monkeypatch.chdir(tmp_path / "runs")
    assert spec.path.is_file() and all(c.is_file() for m in spec.members for c in m.checkpoints)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["ensemble", "--no-plots", "runs/effnet", "runs/resnet", "--out", "ens2", "-q"])
    assert r.exit_code == 0 and r.stdout == "ens2\n", (r.stdout, r.stderr)
    r = CliRunner().invoke(app, ["ensemble", "--no-plots", "runs/effnet", "runs/resnet", "-q"])
    assert r.exit_code == 0 and r.stdout == "outputs/ensembles/soft-effnet+resnet\n", (r.stdout, r.stderr)


def test_spec_records_the_weight_metric_and_the_rebuild_command_repeats_it(tmp_path):
    """--method weighted --weight-metric f1 fitted its weights by macro-F1, but spec.yaml did not record it: predict's
    leak refusal's rebuild command (predict._rebuild_flags, no --weights: fitted again) fitted them by log-loss. The
    metric is spec.yaml's weight_metric and the command repeats one that is not the method's default; a spec.yaml
    without it (written before) reads as that default, the one it was built with."""
    from imgcls.ensemble import build_ensemble
    from imgcls.predict import _rebuild_flags
    rows = _val_rows(tmp_path / "data")
    r1 = make_tiny_run(tmp_path / "runs" / "effnet", seed=1, val_rows=rows, val_quality=0.6)
    r2 = make_tiny_run(tmp_path / "runs" / "resnet", model="test_resnet", seed=2, val_rows=rows, val_quality=0.3)
    by_f1 = build_ensemble([r1, r2], method="weighted", metric="f1", out=tmp_path / "f1", plots=False)
    assert by_f1.weight_metric == "f1"
    assert yaml.safe_load((tmp_path / "f1" / "spec.yaml").read_text())["weight_metric"] == "f1"
    assert _rebuild_flags(load_spec(tmp_path / "f1")) == "--method weighted --weight-metric f1 "
    # the method's default is left out, as before (hard's default is f1, so --weight-metric logloss is not: refused
    # for hard, it never reaches a spec)
    build_ensemble([r1, r2], method="weighted", out=tmp_path / "ll", plots=False)
    assert load_spec(tmp_path / "ll").weight_metric == "logloss"
    assert _rebuild_flags(load_spec(tmp_path / "ll")) == "--method weighted "
    build_ensemble([r1, r2], method="hard", metric="f1", out=tmp_path / "hard", plots=False)
    assert _rebuild_flags(load_spec(tmp_path / "hard")) == "--method hard "
    # an older spec.yaml, without weight_metric: its method's default, no flag
    doc = yaml.safe_load((tmp_path / "ll" / "spec.yaml").read_text())
    del doc["weight_metric"]
    (tmp_path / "ll" / "spec.yaml").write_text(yaml.safe_dump(doc))
    assert load_spec(tmp_path / "ll").weight_metric is None
    assert _rebuild_flags(load_spec(tmp_path / "ll")) == "--method weighted "
    # typed weights record none (nothing was fitted)
    typed = build_ensemble([r1, r2], method="weighted", weights="1,3", out=tmp_path / "typed", plots=False)
    assert typed.weight_metric is None and "weight_metric" not in (tmp_path / "typed" / "spec.yaml").read_text()
    doc["weight_metric"] = "auc"
    (tmp_path / "ll" / "spec.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="weight_metric 'auc' is not one of logloss, f1"):
        load_spec(tmp_path / "ll")


def test_dacon_s_two_ways_to_its_artist_classes_are_one_task_that_ensemble_combines(tmp_path, monkeypatch):
    """DACON's train.csv (id, img_path, artist) trained two ways, `split train.csv --label-col artist` then `train`
    (the manifest's labels) and `train train.csv --target artist`, made runs of the same classes that `imgcls runs`
    called two tasks ('label (2)', 'artist (2)'), ranked apart, and ensemble refused ('members predict different
    columns'). --target artist there is the label task: said once, recorded (target_used), one task, combined."""
    from conftest import make_dacon_csv
    from imgcls.runs import find_runs, leaderboard
    make_dacon_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    tiny = ["--model", "test_resnet", "--no-pretrained", "--img-size", "32", "--batch-size", "8", "--workers", "0",
            "--device", "cpu", "--aug", "none", "--epochs", "1", "--no-plots", "--out", "outputs/runs"]
    r = runner.invoke(app, ["split", "train.csv", "--label-col", "artist", "--val", "0.5", "--no-near-dup", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "data/splits.csv", "--name", "A", *tiny])
    assert r.exit_code == 0 and "--target" not in r.output, r.output
    r = runner.invoke(app, ["train", "train.csv", "--target", "artist", "--val-split", "0.5", "--name", "B", *tiny])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and said.count("--target artist: the column holds the classes of train.csv, read "
                                           "unlabeled (--label-col artist reads them as its labels), so the run "
                                           "predicts the label task") == 1, r.output
    assert yaml.safe_load((tmp_path / "outputs" / "runs" / "B" / "config.yaml").read_text())["target_used"] == "label"
    board = leaderboard(find_runs(tmp_path / "outputs"))
    assert dict(zip(board["name"], board["task"])) == {"runs/A": "label (2)", "runs/B": "label (2)"}
    r = runner.invoke(app, ["ensemble", "outputs/runs/A", "outputs/runs/B", "--no-plots", "--out", "ens"])
    assert r.exit_code == 0 and (tmp_path / "ens" / "spec.yaml").is_file(), r.output
