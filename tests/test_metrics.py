"""imgcls.metrics: one macro-F1 (over every class of the task) for train, OOF, ensemble and predict."""
from __future__ import annotations

import numpy as np
import pytest

from imgcls import metrics


def test_macro_f1_counts_every_class_of_the_task():
    # class 2 is neither in the truth nor predicted: train's former average over the classes present said 0.6667,
    # ensemble's over all classes 0.4444 for these same predictions
    y, p = np.array([0, 1, 1]), np.array([0, 1, 0])
    from sklearn.metrics import f1_score
    assert f1_score(y, p, average="macro") == pytest.approx(2 / 3)          # the present-classes number
    assert metrics.macro_f1(y, p, 3) == pytest.approx(4 / 9)
    assert metrics.macro_f1(y, p, ["a", "b", "c"]) == pytest.approx(4 / 9)
    names = np.array(["a", "b", "c"])
    assert metrics.macro_f1(names[y], names[p], ["a", "b", "c"]) == pytest.approx(4 / 9)   # names, not indices
    s = metrics.scores(names[y], names[p], ["a", "b", "c"])
    assert s["n"] == 3 and s["accuracy"] == pytest.approx(2 / 3) and s["macro_f1"] == pytest.approx(4 / 9)
    from imgcls.ensemble import macro_f1 as ens_f1                  # ensemble (and predict) use this one
    assert ens_f1 is metrics.macro_f1


def test_index_macro_f1_is_sklearns_number_and_the_weight_search_does_not_go_through_sklearn(monkeypatch):
    """ensemble's f1 weight search (hard voting, --weight-metric f1) scored each candidate weight with sklearn's
    f1_score, ~5 ms of argument checks a call: a two-member hard ensemble's fit and 5-fold cross-fitted score were
    ~400 calls, seconds of `imgcls ensemble` for 24 rows. macro_f1 counts index arrays itself: the same float as
    sklearn's (bit for bit; a value outside 0..k-1 counts for no class, as labels= leaves it), no sklearn call."""
    from sklearn.metrics import f1_score
    rng = np.random.default_rng(0)
    for _ in range(150):           # sklearn ~4 ms a call: 150 cases (sizes 1-7, values past k-1 too)
        n, m = int(rng.integers(1, 8)), int(rng.integers(1, 60))
        y, p = rng.integers(0, n + 1, m), rng.integers(0, n + 1, m)
        assert metrics.macro_f1(y, p, n) == f1_score(y, p, labels=list(range(n)), average="macro", zero_division=0)
    y = np.array([True, False, True])
    assert metrics.macro_f1(y, ~y, 2) == 0.0 and metrics.macro_f1(y, y, 2) == 1.0
    import sklearn.metrics

    def no_sklearn(*a, **k):
        raise AssertionError("sklearn's f1_score called")
    monkeypatch.setattr(sklearn.metrics, "f1_score", no_sklearn)
    from imgcls.ensemble.voting import crossfit_macro_f1, fit_weights
    probs = [rng.dirichlet(np.ones(3), 24) for _ in range(2)]
    y = np.arange(24) % 3
    assert fit_weights(probs, y, "hard").sum() == pytest.approx(1.0)
    assert crossfit_macro_f1(probs, y, "hard") is not None
    with pytest.raises(AssertionError, match="f1_score"):      # names: still sklearn's (the spy is live)
        metrics.macro_f1(["a", "b"], ["a", "a"], ["a", "b"])


def test_per_class_and_confusion(tmp_path, monkeypatch):
    classes = ["a", "b", "c"]
    y = ["a", "a", "b", "b", "b"]
    p = ["a", "b", "b", "b", "a"]
    pc = metrics.per_class(y, p, classes)
    assert list(pc["class"]) == classes and list(pc["support"]) == [2, 3, 0] and list(pc["predicted"]) == [2, 3, 0]
    assert pc.loc[0, "precision"] == pytest.approx(0.5) and pc.loc[1, "recall"] == pytest.approx(2 / 3)
    assert pc.loc[2, "f1"] == 0
    assert pc["f1"].mean() == pytest.approx(metrics.macro_f1(y, p, classes))
    cm = metrics.confusion(y, p, classes)
    assert cm.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]
    cn = metrics.confusion(y, p, classes, normalize=True)
    assert np.allclose(cn.sum(1), [1, 1, 0]) and cn[1, 1] == pytest.approx(2 / 3)
    import imgcls.report as report
    shown, save = [], report.save_figure

    def spy(fig, path, **kw):       # the cells' texts as drawn: an empty cell is blank, in both matrices
        shown.append([t.get_text() for t in fig.axes[0].texts if t.get_visible()])
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    raw, norm = metrics.confusion_pngs(y, p, classes, tmp_path, title="t")
    assert raw.name == "confusion_matrix.png" and norm.name == "confusion_matrix_normalized.png"
    assert raw.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and norm.stat().st_size > 1000
    assert shown == [["1", "1", "1", "2"], ["0.50", "0.50", "0.33", "0.67"]]
    assert np.isnan(metrics.macro_f1([], [], classes))


def test_curves_of_one_epoch_tick_the_epoch_alone(tmp_path, monkeypatch):
    """One epoch's curves: the epoch axis reads 1, not 0.945 ... 1.05 (an integer locator needs two ticks by
    default), and the figure is written."""
    import imgcls.report as report
    from imgcls.train.progress import curves_png
    ticks, save = [], report.save_figure

    def spy(fig, path, **kw):
        for ax in fig.axes:                                   # the ticks inside the axis, as drawn
            lo, hi = ax.get_xlim()
            ticks.append([float(t) for t in ax.get_xticks() if lo <= t <= hi])
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    curves_png([dict(epoch=1, train_loss=2.15, val_loss=2.16, train_acc=.19, val_acc=.24, val_macro_f1=.13,
                     lr=1.3e-4)], tmp_path / "curves.png")
    assert ticks == [[1.0]] * 3 and (tmp_path / "curves.png").stat().st_size > 1000


def test_curves_of_one_epoch_have_no_tick_offset(tmp_path, monkeypatch):
    """One epoch whose train and val loss nearly agree: the loss axis read '1e-5+1.5323' over ticks 0.0, 0.2, ...
    (matplotlib's offset). No axis has an offset, and the ticks stay short (the figure's margins are fixed)."""
    import imgcls.report as report
    from imgcls.train.progress import curves_png
    drawn, save = [], report.save_figure

    def spy(fig, path, **kw):
        fig.canvas.draw()
        for ax in fig.axes:
            lo, hi = ax.get_ylim()
            drawn.append((ax.yaxis.get_offset_text().get_text(),
                          [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks()) if lo <= v <= hi]))
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    curves_png([dict(epoch=1, train_loss=1.532301, val_loss=1.532312, train_acc=.30001, val_acc=.30002,
                     val_macro_f1=.30003, lr=1e-3)], tmp_path / "curves.png")
    (loss_offset, loss_ticks), (acc_offset, acc_ticks), (lr_offset, _) = drawn
    assert loss_offset == "" and acc_offset == "", drawn
    assert lr_offset == "1e\N{MINUS SIGN}3"                        # the lr's scale (not an offset) stays
    assert all(len(t) <= 5 for t in loss_ticks + acc_ticks), drawn
    assert float(loss_ticks[0]) <= 1.5323 <= float(loss_ticks[-1])


def test_confusion_rows_say_how_many_images_they_hold(tmp_path, monkeypatch):
    """The row-normalised matrix drew a class of 1 val image at 1.00 like one of 30, and a class without val
    images as a blank row, with nothing saying either: each row's total is now beside it, on the right, labelled,
    in both matrices and whatever the number of classes."""
    import imgcls.report as report
    rows, save = [], report.save_figure

    def spy(fig, path, **kw):
        (right,) = fig.axes[0].child_axes
        lo, hi = sorted(right.get_ylim())
        rows.append((right.get_ylabel(), {round(v): t.get_text() for t, v in
                                          zip(right.get_yticklabels(), right.get_yticks()) if lo <= v <= hi}))
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    metrics.confusion_pngs([0, 0, 0, 1], [0, 1, 1, 1], ["cat", "dog", "newt"], tmp_path)
    assert rows == [("row total (images)", {0: "3", 1: "1", 2: "0"})] * 2
    rows.clear()
    classes = [f"class_{i:02d}" for i in range(30)]
    metrics.confusion_pngs(list(range(30)) + [0], list(range(30)) + [1], classes, tmp_path)
    assert [r[1][0] for r in rows] == ["2", "2"] and all(r[1][29] == "1" for r in rows)


def test_confusion_of_many_classes_has_a_colour_scale(tmp_path, monkeypatch):
    """Over 25 classes the cells carry no numbers: each matrix has a labelled colour bar, else no cell can be read
    (a 30-class matrix was blue shades without a scale)."""
    import imgcls.report as report
    bars, save = [], report.save_figure

    def spy(fig, path, **kw):
        bars.append([ax.get_ylabel() for ax in fig.axes[1:]])
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    classes = [f"class_{i:02d}" for i in range(30)]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 30, 300)
    metrics.confusion_pngs(y, np.where(rng.random(300) < .5, y, rng.integers(0, 30, 300)), classes, tmp_path)
    assert bars == [["images"], ["share of the true class's rows"]]
    bars.clear()
    metrics.confusion_pngs([0, 1], [0, 1], ["a", "b"], tmp_path)      # few classes: numbers in the cells, no bar
    assert bars == [[], []]


def test_many_classes_without_rows_are_cut_as_every_list_is():
    """The first 12 classes with no validation rows and how many more, in the words of every cut list
    (imgcls.options.shown): it said "(+2 more)" where every other message says "and 2 more"."""
    note = metrics.without_rows_note(np.array([0]), [f"c{i:02d}" for i in range(15)])
    assert note.startswith("14 of 15 classes have no validation rows (c01, c02, c03, c04, c05, c06, c07, c08, c09, "
                           "c10, c11, c12 and 2 more): "), note


def test_a_diverged_run_s_curves_mark_the_epoch_train_kept_by_its_metric(tmp_path):
    """`train --metric loss` of a run whose validation loss is NaN every epoch (it diverged: --lr 1e30) stopped with a
    traceback drawing curves.png after its first epoch (KeyError: None): best_epoch_of found no best epoch in a curve
    of no number, while train keeps its first epoch (metrics.better: no NaN beats another) as best.pt. best_epoch_of
    now picks the epoch `better` picks on every curve, the all-NaN one included, and curves.png marks it."""
    import pandas as pd
    from imgcls.metrics import best_epoch_of, better
    from imgcls.train.progress import curves_png
    nan, inf = float("nan"), float("inf")
    history = [dict(epoch=e, train_loss=nan, val_loss=nan, train_acc=.5, val_acc=.5, val_macro_f1=1 / 3, lr=1e-3)
               for e in (1, 2)]
    curves_png(history, tmp_path / "curves.png", "loss")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    for metric in ("loss", "macro_f1"):
        for values in ([nan, nan], [nan, 0.5, nan], [0.5, nan], [inf, 0.5], [0.5, 0.5], [0.7, 0.2, 0.9]):
            best, kept = None, None
            for epoch, v in enumerate(values, 1):       # train's choice, epoch by epoch
                if better(v, best, metric):
                    best, kept = v, epoch
            assert best_epoch_of(pd.Series(values, index=range(1, len(values) + 1)), metric) == kept, (metric, values)
