"""imgcls eda: summary numbers, duplicate groups, artifacts, and every kind of bad file through the CLI."""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import ODD_FILES, make_image_folder, make_odd_file, second_command_while_writing, tree_snapshot
from imgcls import eda
from imgcls import manifest as mf
from imgcls.cli import app

runner = CliRunner()


def read_outputs(out):
    summary = json.loads((out / "summary.json").read_text())
    manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    report = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    return summary, manifest, report


@pytest.mark.parametrize("kind", sorted(ODD_FILES))
def test_eda_survives_odd_file(kind, tmp_path):
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2})
    bad = make_odd_file(kind, root / "a")
    rel = bad.relative_to(root).as_posix()
    before = tree_snapshot(root)
    out = tmp_path / "eda"
    # --samples 4: every image of a and b drawn in the sample grid (its default 8 a class: empty cells beside them)
    r = runner.invoke(app, ["eda", str(root), "--out", str(out), "--max-pixels", "10000", "--workers", "1", "-q",
                            "--samples", "4"])
    assert r.exit_code == 0, r.output
    assert tree_snapshot(root) == before                          # the input is byte-identical
    summary, manifest, report = read_outputs(out)
    row = manifest[manifest["path"] == rel]
    assert len(row) == 1                                          # every file is listed by its path
    expected_error = ODD_FILES[kind][1]
    assert summary["n_images"] == 6
    if expected_error:
        assert expected_error in row["error"].item()
        assert summary["n_errors"] == 1 and summary["classes"] == {"a": 3, "b": 2}
        assert summary["errors"] == [{"path": rel, "error": row["error"].item()}]
        assert rel in report and expected_error in report
    else:
        assert row["error"].item() == ""
        assert summary["n_errors"] == 0 and summary["classes"] == {"a": 4, "b": 2}
        expected_mode = {"cmyk_jpeg": "CMYK", "png_16bit": "I;16", "palette_alpha_png": "P"}.get(kind, "RGB")
        assert row["mode"].item() == expected_mode and summary["modes"][expected_mode] >= 1
        if kind == "exif_rotated_jpeg":
            assert (row["width"].item(), row["height"].item()) == ("30", "60")
    assert (out / "samples.png").is_file() and (out / "class_counts.png").is_file()


def test_summary_known_numbers_and_duplicates(tmp_path):
    root = make_image_folder(tmp_path / "raw", {"a": 5, "b": 3, "c": 1})
    shutil.copyfile(root / "a" / "000.png", root / "a" / "copy_same_class.png")   # group 1: within a
    shutil.copyfile(root / "b" / "000.png", root / "c" / "copy_b.png")            # group 2: b and c
    shutil.copyfile(root / "b" / "000.png", root / "a" / "copy_b.png")            #          and a
    (root / "c" / "broken.jpg").write_text("nope")
    df = mf.load(root, scan=True)
    s = eda.summarize(df)
    assert s["n_images"] == 13 and s["n_readable"] == 12 and s["n_errors"] == 1
    assert s["classes"] == {"a": 7, "b": 3, "c": 2} and s["n_classes"] == 3
    assert s["imbalance_ratio"] == pytest.approx(3.5)
    assert s["exact_duplicate_groups"] == 2 and s["exact_duplicate_images"] == 3
    assert s["cross_class_duplicate_groups"] == 1
    groups = eda.exact_duplicate_groups(df)
    assert groups[0]["paths"] == ["a/copy_b.png", "b/000.png", "c/copy_b.png"] and groups[0]["cross_class"]
    assert groups[1]["paths"] == ["a/000.png", "a/copy_same_class.png"] and not groups[1]["cross_class"]
    assert s["width"] == {"min": 48, "median": 48.0, "max": 48}
    assert s["modes"] == {"RGB": 12} and s["formats"] == {"PNG": 12}


def test_oversampled_copies_are_said_and_the_imbalance_is_the_originals(tmp_path, capsys):
    """eda of `preprocess --oversample`'s output (a long-tailed Fashion-MNIST: Bag 4 images + 5 copies) counted
    the copies as images, said nothing of them, and gave the rebalanced imbalance (6.7 for the data's 15.0). The
    summary, screen and report now say how many rows are copies (augmented_from) and the originals' imbalance."""
    root = make_image_folder(tmp_path / "raw", {"a": 12, "b": 3})
    for k in range(3):                          # b: 3 images + 3 copies, as preprocess --oversample writes them
        shutil.copyfile(root / "b" / f"{k:03d}.png", root / "b" / f"{k:03d}__os1.png")
    df = mf.load(root, scan=True)
    df["augmented_from"] = [p.replace("__os1", "") if "__os1" in p else "" for p in df["path"]]
    s = eda.summarize(df)
    assert s["classes"] == {"a": 12, "b": 6} and s["imbalance_ratio"] == pytest.approx(2.0)
    assert s["oversampled_copies"] == 3 and s["originals"] == {"a": 12, "b": 3}
    assert s["imbalance_ratio_originals"] == pytest.approx(4.0)
    capsys.readouterr()
    eda.print_summary(s)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in capsys.readouterr().out.splitlines()]
    assert ["of them oversampled copies (augmented_from)", "3"] in rows, rows
    assert ["imbalance max/min, originals", "4.00"] in rows, rows
    assert "oversampled_copies" not in eda.summarize(df.drop(columns="augmented_from"))


def test_a_class_clean_set_aside_whole_is_named_in_the_set_aside_line():
    """When clean set aside every row of a class, the class vanished from eda's class table with no mention: the
    set-aside line said only the row count. It names the class; a class with rows kept, or rows with no label, is
    not named."""
    df = pd.DataFrame({"path": [f"{k}.png" for k in range(6)], "label": ["a", "a", "b", "c", "c", ""],
                       "keep": [True, False, True, False, False, False],
                       "reason": ["", "exact_duplicate", "", "out_of_domain", "out_of_domain", "unreadable"]})
    line = eda.set_aside_line(df)
    assert line.endswith("eda counts the 2 rows later steps use; 1 class set aside whole (in no class count here): "
                         "c"), line


def test_rows_clean_set_aside_are_not_counted_and_are_said_in_one_line(tmp_path):
    """`clean data/raw && eda data/clean` counted the rows clean set aside (keep=false): people 24 and total
    readable 120 where split and train use 23; of an oversampled set `originals` counted them too. eda now counts the
    rows later steps use (mf.kept), says in one line how many clean set aside, and keeps every row in manifest.csv."""
    root = make_image_folder(tmp_path / "raw", {"a": 6, "b": 3})
    shutil.copyfile(root / "a" / "000.png", root / "a" / "000_twin.png")
    for k in range(2):                          # b: 3 images + 2 copies, as preprocess --oversample writes them
        shutil.copyfile(root / "b" / f"{k:03d}.png", root / "b" / f"{k:03d}__os1.png")
    df = mf.load(root, scan=True)
    df["augmented_from"] = [p.replace("__os1", "") if "__os1" in p else "" for p in df["path"]]
    aside = df["path"].isin(["a/000_twin.png", "a/001.png"])
    df["keep"] = ~aside
    df["reason"] = ["exact_duplicate" if p == "a/000_twin.png" else "out_of_domain" if a else ""
                    for p, a in zip(df["path"], aside)]
    mf.write(df, tmp_path / "clean" / mf.MANIFEST_NAME)
    r = runner.invoke(app, ["eda", str(tmp_path / "clean"), "--out", str(tmp_path / "eda"), "--workers", "1",
                            "--samples", "1"])
    assert r.exit_code == 0, r.output
    assert ("clean set aside 2 of 12 rows (keep=false: 1 exact_duplicate, 1 out_of_domain); eda counts the 10 rows "
            "later steps use") in " ".join(r.output.split()), r.output
    s, manifest, report = read_outputs(tmp_path / "eda")
    assert s["classes"] == {"a": 5, "b": 5} and s["n_images"] == s["n_readable"] == 10
    assert s["set_aside_by_clean"] == 2
    assert s["exact_duplicate_groups"] == 2      # b's copies; a's twin, set aside, is none
    assert s["originals"] == {"a": 5, "b": 3} and s["imbalance_ratio_originals"] == pytest.approx(5 / 3)
    assert "rows set aside by clean (keep=false), not counted here" in report
    assert len(manifest) == 12                   # every row read, as read
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in r.output.splitlines()]
    assert ["set aside by clean (keep=false)", "2"] in rows and ["total readable", "10"] in rows, rows


def test_the_imbalance_ratio_reads_the_same_on_screen_in_the_report_and_the_figure(tmp_path, monkeypatch):
    """eda showed one imbalance ratio three ways: 1.575 in summary.json, 1.57 in report.html, 1.6 on screen and
    in the class-count figure's title. eda.ratio_text owns its text (3 significant digits) for all three."""
    root = make_image_folder(tmp_path / "raw", {"a": 19, "b": 12}, size=(16, 16))     # 19/12 = 1.5833
    titles = []
    save = eda.report.save_figure
    monkeypatch.setattr(eda.report, "save_figure",
                        lambda fig, path, *a, **k: (titles.extend(ax.get_title() for ax in fig.axes),
                                                    save(fig, path, *a, **k))[1])
    out = tmp_path / "eda"
    r = runner.invoke(app, ["eda", str(root), "--out", str(out), "--workers", "1", "--samples", "1"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    summary, _, report = read_outputs(out)
    assert summary["imbalance_ratio"] == pytest.approx(19 / 12)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in r.output.splitlines()]
    assert ["imbalance max/min", "1.58"] in rows, r.output
    assert "<td>imbalance (max/min)</td><td>1.58</td>" in report
    assert any("max/min = 1.58" in t for t in titles), titles
    assert [eda.ratio_text(x) for x in (1.575, 4.0, 15.0, 123.4, 2345.6)] == ["1.57", "4.00", "15.0", "123", "2346"]


def test_one_class_has_no_imbalance_ratio_on_screen_or_in_the_report(tmp_path):
    """eda of a folder of one class printed "imbalance max/min 1.00" on screen and in report.html's overview (the
    class with itself: read as a balanced set), while its figure said "(1 class)". Both say "- (1 class)", the
    originals' row of an oversampled set too; summary.json keeps its number."""
    root = make_image_folder(tmp_path / "raw", {"only": 3}, size=(16, 16))
    shutil.copyfile(root / "only" / "000.png", root / "only" / "000__os1.png")
    out = tmp_path / "eda"
    r = runner.invoke(app, ["eda", str(root), "--out", str(out), "--workers", "1", "--samples", "1"],
                      env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    summary, _, report = read_outputs(out)
    assert summary["imbalance_ratio"] == pytest.approx(1.0)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in r.output.splitlines()]
    assert ["imbalance max/min", "- (1 class)"] in rows, r.output
    assert "<td>imbalance (max/min)</td><td>- (1 class)</td>" in report
    df = mf.load(root, scan=True)
    df["augmented_from"] = [p.replace("__os1", "") if "__os1" in p else "" for p in df["path"]]
    s = {**eda.summarize(df), "source": str(root)}
    assert s["imbalance_ratio_originals"] == pytest.approx(1.0)
    html_path = eda.write_report(tmp_path / "r.html", s, df, {"sizes": "", "aspect": ""}, [], [])
    assert "<td>imbalance (max/min) of the originals</td><td>- (1 class)</td>" in html_path.read_text()


def test_an_imbalance_ratio_rounding_up_to_a_power_of_ten_keeps_three_significant_digits():
    """eda.ratio_text took its decimals from the ratio before rounding: 2499/250 = 9.996 read '10.00' and 99.96
    '100.0' (four significant digits), where 10.01 reads '10.0' and 100.4 '100'."""
    assert [eda.ratio_text(x) for x in (2499 / 250, 99.96, 999.6, 10.01, 100.4, 9.994)] == \
        ["10.0", "100", "1000", "10.0", "100", "9.99"]


def test_a_long_class_name_is_cut_in_the_sample_grid_title_alone_and_draws_without_warnings(tmp_path, monkeypatch):
    """A ~100-character class name made samples.png's tight_layout warn on screen ("Tight layout not applied": the
    row's title wider than any layout allows). Figure titles cut it with an ellipsis to the row (its count kept);
    summary.json and the report keep the whole name."""
    import warnings
    name = "a_very_long_class_name_" + "w" * 77                         # 100 characters
    root = make_image_folder(tmp_path / "raw", {name: 3, "short": 2}, size=(16, 16))
    titles = []
    save = eda.report.save_figure
    monkeypatch.setattr(eda.report, "save_figure",
                        lambda fig, path, *a, **k: (titles.extend(ax.get_title(loc="left") for ax in fig.axes),
                                                    save(fig, path, *a, **k))[1])
    out = tmp_path / "eda"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app, ["eda", str(root), "--out", str(out), "--workers", "1", "-q"])
    assert r.exit_code == 0, r.output
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
    cut = [t for t in titles if t.startswith("a_very_long_class_name_")]
    assert len(cut) == 1 and cut[0].endswith("\u2026 (3)") and len(cut[0]) < 80, titles
    assert "short (2)" in titles
    summary, _, report = read_outputs(out)
    assert name in summary["classes"] and name in report
    for per_class in (1, 3, 12):                   # --samples: the row is narrower or wider
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            eda.plot_sample_grids(mf.load(root, scan=True, announce=False), tmp_path / f"s{per_class}", 0, per_class)
        assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []


@pytest.mark.rendered_figures        # the size bbox_inches='tight' crops to is the point
def test_a_long_class_name_as_a_tick_label_is_cut_and_the_figures_keep_their_size(tmp_path):
    """A ~100-character class name was drawn whole as a rotated tick label: eda's class_counts.png grew from 449 to
    1049 px tall, split's class distribution, predict's class shares and the confusion matrix alike. Tick labels are
    cut by report.tick_labels (fit_text, TICK_INCHES): a figure grows by no more than that."""
    import base64
    import io

    from imgcls import inference_report, metrics
    from imgcls.split import report as split_report

    def sizes(long: str) -> dict[str, tuple[int, int]]:
        classes, out = ["a", long, "c"], tmp_path / str(len(long))
        out.mkdir()

        def png(path):
            with Image.open(path) as im:
                return im.size
        dist = pd.DataFrame({"column": "label", "value": classes * 2, "part": ["train"] * 3 + ["val"] * 3,
                             "n": 1, "share": 0.5})
        html = inference_report._distribution([long, "a", "c"], classes, None, "x")[0]
        uri = html.split("base64,")[1].split('"')[0]
        return {"eda": png(eda.plot_class_counts({"classes": {"a": 5, long: 3, "c": 1}, "imbalance_ratio": 5.0},
                                                  out / "class_counts.png")),
                "split": png(split_report.plot_distribution(dist, out / "distribution.png")),
                "confusion": png(metrics.confusion_pngs([0, 1, 2, 1], [0, 1, 1, 2], classes, out)[0]),
                "predict": Image.open(io.BytesIO(base64.b64decode(uri))).size}
    short, long = sizes("bb"), sizes("a_very_long_class_name_" + "w" * 77)        # 100 characters
    most = 3 * 110       # px: report.TICK_INCHES (2.6) and a margin at save_figure's dpi (figure_data_uri's is lower)
    for fig in short:
        assert long[fig][1] - short[fig][1] <= most, (fig, short[fig], long[fig])
        assert long[fig][0] - short[fig][0] <= most, (fig, short[fig], long[fig])


def test_long_class_names_alike_up_to_the_cut_keep_their_different_ends_as_tick_labels():
    """Two long class names that differ only after the cut were drawn as the same tick label ('..._comp…' twice on a
    confusion matrix's axes): the cut keeps each name's distinguishing end after the ellipsis, within the width."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    from imgcls import report
    left, right = (f"a_very_long_class_name_shared_by_two_competition_classes_{end}" for end in ("left", "right"))
    labels = report.tick_labels([left, "short", right, left, "x" * 80, "x" * 90], 7)
    assert labels[1] == "short" and labels[0] == labels[3]
    assert len(set(labels)) == 5, labels
    assert labels[0].endswith("\u2026left") and labels[2].endswith("\u2026right"), labels
    width = TextToPath().get_text_width_height_descent
    assert all(width(s, FontProperties(size=7), ismath=False)[0] <= report.TICK_INCHES * 72 for s in labels)


def test_long_class_names_differing_in_the_middle_and_alike_at_both_ends_keep_where_they_differ():
    """Two long class names alike at the start and over their last half-label ('..._A_photographs_of_the_left_side_...'
    / '..._B_...'): the kept end was the same for both, so the tick labels were drawn alike still. They keep the part
    where they differ instead, within the width."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    from imgcls import report
    start = "category_of_the_long_competition_2019_and_some_more_words_"
    a, b = (f"{start}{c}_photographs_of_the_left_side_of_the_building_at_night" for c in "AB")
    labels = report.tick_labels([a, b, "short"], 8)
    assert labels[0] != labels[1] and labels[2] == "short", labels
    assert "A_" in labels[0] and "B_" in labels[1], labels
    width = TextToPath().get_text_width_height_descent
    assert all(width(s, FontProperties(size=8), ismath=False)[0] <= report.TICK_INCHES * 72 for s in labels)


def test_every_duplicate_group_is_written(tmp_path, monkeypatch):
    """report.html lists the first DUPLICATES_SHOWN groups (200 of openclipart_l1's 933, "733 more rows not
    shown") and summary.json only counts them: the other groups were written nowhere. exact_duplicates.csv holds
    every group, one row per image, and the report's line under the cut table names it."""
    root = make_image_folder(tmp_path / "raw", {"a": 5, "b": 3, "c": 1})
    shutil.copyfile(root / "b" / "000.png", root / "c" / "copy_b.png")            # group 1: b, c and a
    shutil.copyfile(root / "b" / "000.png", root / "a" / "copy_b.png")
    shutil.copyfile(root / "a" / "000.png", root / "a" / "copy_same_class.png")   # group 2: within a
    shutil.copyfile(root / "a" / "001.png", root / "b" / "copy_a1.png")           # group 3: a and b
    monkeypatch.setattr(eda, "DUPLICATES_SHOWN", 1)
    out = tmp_path / "eda"
    eda.run_eda(root, out, samples_per_class=1)
    summary, manifest, report = read_outputs(out)
    assert summary["exact_duplicate_groups"] == 3 and summary["exact_duplicates_file"] == "exact_duplicates.csv"
    dups = pd.read_csv(out / "exact_duplicates.csv", dtype=str, keep_default_na=False)
    assert list(dups.columns) == ["group", "copies", "cross_class", "label", "path", "sha256"]
    assert dups["group"].tolist() == ["1", "1", "1", "2", "2", "3", "3"]
    assert dups["path"].tolist() == ["a/copy_b.png", "b/000.png", "c/copy_b.png", "a/000.png",
                                     "a/copy_same_class.png", "a/001.png", "b/copy_a1.png"]
    assert dups["label"].tolist() == ["a", "b", "c", "a", "a", "a", "b"]
    assert dups["copies"].tolist() == ["3", "3", "3", "2", "2", "2", "2"]
    assert dups["cross_class"].tolist() == ["True"] * 3 + ["False"] * 2 + ["True"] * 2
    sha = dict(zip(manifest["path"], manifest["sha256"]))
    assert all(sha[p] == h for p, h in zip(dups["path"], dups["sha256"]))
    assert "2 more groups not shown: every group, one row per image, is in exact_duplicates.csv" in report


def test_long_class_names_and_paths_wrap_inside_the_report_tables(tmp_path):
    """A class name or path with no space (Korean_and_Latin_joined_by_underscores/file.png) was one unbreakable
    word: the table grew past the page. Every report's cells may wrap anywhere; numbers stay whole."""
    long = "동물_아주아주_긴_클래스_이름_very_long_class_name_for_tables"
    root = make_image_folder(tmp_path / "raw", {"a": 2, long: 2})
    eda.run_eda(root, tmp_path / "eda", samples_per_class=1)
    page = (tmp_path / "eda" / "report.html").read_text()
    assert f"<td>{html.escape(long)}</td>" in page
    css = page[page.index("<style>"):page.index("</style>")]
    assert "td,th{overflow-wrap:anywhere}" in css and "white-space:nowrap}" in css.split("td.num{")[1]


def test_median_size_is_printed_as_a_whole_number(tmp_path):
    """The overview printed 'width min / median / max' as '15 / 171.0 / 256': a median of whole pixels reads as
    the integer beside min and max; a median between two sizes keeps its half. So does the test-set section. Each
    row says its unit (px), as the size figures' axes and the test section's median side do."""
    from conftest import make_image
    for i, (c, w) in enumerate([("a", 40), ("a", 41), ("b", 50), ("b", 51)]):
        make_image(tmp_path / "raw" / c / f"{i}.png", size=(w, 30), seed=i)
    for i, w in enumerate((20, 22, 30)):
        make_image(tmp_path / "test" / f"{i}.png", size=(w, 24), seed=10 + i)
    eda.run_eda(tmp_path / "raw", tmp_path / "eda", test=tmp_path / "test", samples_per_class=1)
    report = " ".join(read_outputs(tmp_path / "eda")[2].split())
    assert "<td>width min / median / max (px)</td><td>40 / 45.5 / 51</td>" in report
    assert "<td>height min / median / max (px)</td><td>30 / 30 / 30</td>" in report
    assert "<td>width min / median / max (px)</td><td>20 / 22 / 30</td>" in report           # the test set
    assert "<td>height min / median / max (px)</td><td>24 / 24 / 24</td>" in report
    assert ".0 /" not in report and ".0</td>" not in report


@pytest.mark.timeout(60)
def test_exact_duplicate_groups_at_scale(work):
    """20,000 byte-copy groups in 100,000 rows against 4,000 in 20,000, in the same test: cut in arrays (a pandas
    groupby per group took 1.6 s, and run_eda computed the groups twice: for summary.json and for the report).
    Measured as work, not seconds (a 1 s CPU bound fails on a slower or loaded machine): the pandas operations do not
    grow with the groups, and the CPU seconds grow at most twice as fast as the rows (5x the rows: 4.5x to 7.5x measured
    quiet and at load 12, the sorts over 5x the paths; quadratic 25x, a scan of every row per group 12x).
    The two are measured in turn (work.pair), the garbage collector off: with it, its full collections over the
    whole process (torch imported) read 10x to 14x, a flaky failure under load."""
    from synthetic import copy_groups_frame
    small, df = copy_groups_frame(20_000), copy_groups_frame(100_000)
    (ops_small, cpu_small, _), (ops, cpu, groups) = work.pair(lambda: eda.exact_duplicate_groups(small),
                                                              lambda: eda.exact_duplicate_groups(df))
    assert len(groups) == 20_000 and sum(g["n"] for g in groups) == 40_000
    g = groups[0]
    rows = df[df["sha256"] == g["sha256"]]
    assert g["paths"] == sorted(rows["path"]) and g["labels"] == sorted(set(rows["label"]))
    assert g["cross_class"] == (len(g["labels"]) > 1)
    assert ops <= ops_small + 10, (ops, ops_small)           # 16,000 more groups: no pandas call per group
    assert cpu < 10 * cpu_small, f"{cpu:.2f} s CPU for 5x the rows of {cpu_small:.2f} s"


def test_run_eda_artifacts(tmp_path, image_folder):
    out = tmp_path / "eda"
    s = eda.run_eda(image_folder, out, seed=3, workers=1)
    names = {p.name for p in out.iterdir()}
    assert {"class_counts.png", "size_heatmap.png", "aspect_ratio.png", "samples.png", "report.html",
            "summary.json", "manifest.csv"} <= names
    assert not any(n.startswith(".") for n in names)                 # no temporary files left behind
    assert s["seed"] == 3 and s["classes"] == {"a": 6, "b": 4, "c": 2}
    import base64
    import re
    report = (out / "report.html").read_text()
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', report)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)   # embedded: the page can move alone
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in srcs}
    for png in ("class_counts.png", "size_heatmap.png", "samples.png"):
        assert (out / png).read_bytes() in embedded
    assert json.loads((out / "summary.json").read_text())["n_images"] == 12


def test_the_keys_run_eda_s_docstring_names_are_in_the_summary_it_returns(tmp_path):
    """run_eda's docstring (help(run_eda) in a notebook) named a `duplicates` key of the summary it returns; there is
    none (exact_duplicate_groups, exact_duplicate_images, cross_class_duplicate_groups). Every key it names is there,
    and the returned dict is summary.json's."""
    import re
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(24, 24))
    summary = eda.run_eda(src, tmp_path / "eda", workers=1)
    named = re.search(r"summary\.json's dict: ([^)]*)\)", eda.run_eda.__doc__).group(1)
    named = [k.strip() for k in named.split(",") if k.strip() not in ("", "...")]
    assert "exact_duplicate_groups" in named and not [k for k in named if k not in summary], (named, list(summary))
    assert json.loads((tmp_path / "eda" / "summary.json").read_text()) == json.loads(json.dumps(summary))


@pytest.mark.rendered_figures
def test_sample_grids_are_seeded(tmp_path):
    root = make_image_folder(tmp_path / "raw", {"a": 12, "b": 12})
    df = mf.load(root, scan=True)
    a = eda.plot_sample_grids(df, tmp_path / "s1", seed=1, per_class=3)[0].read_bytes()
    b = eda.plot_sample_grids(df, tmp_path / "s2", seed=1, per_class=3)[0].read_bytes()
    c = eda.plot_sample_grids(df, tmp_path / "s3", seed=2, per_class=3)[0].read_bytes()
    assert a == b and a != c


def test_many_classes_split_sample_grids(tmp_path):
    root = make_image_folder(tmp_path / "raw", {f"k{i:02d}": 1 for i in range(eda.CLASSES_PER_GRID + 2)},
                             size=(16, 16))
    s = eda.run_eda(root, tmp_path / "eda", samples_per_class=1)
    assert s["n_classes"] == eda.CLASSES_PER_GRID + 2
    assert (tmp_path / "eda" / "samples_1.png").is_file() and (tmp_path / "eda" / "samples_2.png").is_file()


@pytest.fixture(scope="module")
def profiles_eda(tmp_path_factory):
    """(profile folder, eda's out, its summary, the texts of the figures it saved: each axis' left title and x tick
    labels): one run_eda of a profile folder with the default options, shared by the tests that only read what it
    wrote or said (each ran the same eda of its own); one sample a class (the default 8 drew 144 thumbnails, two
    thirds of its time): each class' row and its title are drawn as with 8."""
    from conftest import make_profiles
    from imgcls import report
    root = tmp_path_factory.mktemp("profiles_eda")
    folder = make_profiles(root / "profiles")
    texts, save = [], report.save_figure

    def keep(fig, path, **kw):
        texts.extend(t for ax in fig.axes
                     for t in [ax.get_title(loc="left"), *(x.get_text() for x in ax.get_xticklabels())])
        return save(fig, path, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report, "save_figure", keep)
        s = eda.run_eda(folder, root / "eda", samples_per_class=1)
    return folder, root / "eda", s, texts


def test_profiles_eda_attributes(profiles_eda):
    _, out, s, _ = profiles_eda
    assert (out / "attributes.png").is_file()
    assert s["n_images"] == 84
    assert sum(s["attributes"]["mask"].values()) == 84
    assert s["attributes"]["mask"] == {"0": 60, "1": 12, "2": 12}
    assert sum(s["classes"].values()) == 84 and set(s["classes"]) <= {str(i) for i in range(18)}


def test_profiles_eda_names_the_class_ids(tmp_path, profiles_eda, capsys):
    """A profile dataset's classes are ids 0-17 and its attributes codes: the report and summary.json say what
    each means (class 4 is wearing, female, 30-59), under the age bands eda was given."""
    profile_folder, out, s, _ = profiles_eda
    assert s["class_meanings"]["4"] == "wear, female, 30-59"
    assert set(s["class_meanings"]) == set(s["classes"])
    assert s["attribute_values"]["mask"] == {"0": "wear", "1": "incorrect", "2": "not_wear"}
    assert s["attribute_values"]["age_band"] == {"0": "<30", "1": "30-59", "2": ">=60"}
    page = html.unescape((out / "report.html").read_text())
    for c, meaning in s["class_meanings"].items():
        assert f"<td>{c}</td><td>{meaning}</td>" in page.replace("\n", "")
    assert "<td>1</td><td>incorrect</td>" in page.replace("\n", "")
    # the screen's class table too (it showed the bare ids; found by the mask walkthrough)
    capsys.readouterr()
    eda.print_summary(s)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in capsys.readouterr().out.splitlines()]
    assert ["4", "wear, female, 30-59", str(s["classes"]["4"])] in rows, rows
    assert ["total readable", "", str(s["n_readable"])] in rows, rows
    s40 = eda.run_eda(profile_folder, tmp_path / "eda40", opts=mf.LayoutOptions(age_bands=(40,)), samples_per_class=1)
    assert set(s40["class_meanings"].values()) <= {f"{m}, {g}, {a}" for m in ("wear", "incorrect", "not_wear")
                                                   for g in ("male", "female") for a in ("<40", ">=40")}


def test_all_unreadable_is_refused_before_any_output_is_written(tmp_path):
    """Data none of whose images can be read printed 'eda outputs: .../report.html, ... written' and then the error,
    and the refused run's report replaced an earlier good run's in --out. It is refused in one line (exit 2) before
    anything is written: a new --out is not made, an earlier run's files stay byte for byte."""
    root = tmp_path / "raw"
    for kind in ("zero_bytes", "text_as_jpg"):
        make_odd_file(kind, root / "a")
    (root / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    r = runner.invoke(app, ["eda", str(root), "--out", str(tmp_path / "eda"), "--workers", "1"])
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output and said.count("error:") == 1, r.output
    assert "none of the 3 image(s) can be read" in said and "eda outputs" not in said, r.output
    assert not (tmp_path / "eda").exists()
    good = make_image_folder(tmp_path / "good", {"a": 2, "b": 2}, size=(24, 24))
    out = tmp_path / "eda_good"
    eda.run_eda(good, out, samples_per_class=1)
    before = tree_snapshot(out)
    for p in good.rglob("*.png"):                     # the same data, its images since gone
        p.unlink()
        p.symlink_to(tmp_path / "nowhere.png")
    r = runner.invoke(app, ["eda", str(good), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 2 and "eda outputs" not in r.output and "this run replaces" not in r.output, r.output
    assert "none of the 4 image(s) can be read" in " ".join(r.output.split()), r.output
    assert tree_snapshot(out) == before


def test_embedded_sample_matches_its_truth(tmp_path):
    """data/sample is what data/sample_truth.csv says, within the issue's limits, and eda finds its planted copies."""
    repo = Path(__file__).resolve().parents[1]
    sample, truth = repo / "data" / "sample", pd.read_csv(repo / "data" / "sample_truth.csv")
    files = sorted(p.relative_to(sample).as_posix() for p in sample.rglob("*") if p.is_file())
    assert files == sorted(truth["class"] + "/" + truth["file"])
    size = sum(p.stat().st_size for d in ("sample", "sample_test") for p in (repo / "data" / d).rglob("*")
               if p.is_file())
    assert size < 6e6
    counts = truth["class"].value_counts()
    assert 8 <= len(counts) <= 10 and counts.min() >= 20 and counts.max() <= 125 and counts.nunique() > 5
    assert 4 <= (truth["kind"] == "photo").sum() <= 8 and 5 <= truth["kind"].str.startswith("dup_").sum() <= 10
    s = eda.run_eda(sample, tmp_path / "eda", workers=1, samples_per_class=1)    # a thumbnail a class: none is read
    assert s["n_errors"] == 0 and s["classes"] == counts.to_dict()
    assert max(s["width"]["max"], s["height"]["max"]) <= 128
    groups = [set(g["paths"]) for g in eda.exact_duplicate_groups(mf.load(tmp_path / "eda" / "manifest.csv"))]
    for _, r in truth[truth["kind"] == "dup_exact"].iterrows():
        assert any({f"{r['class']}/{r['file']}", r["source"]} <= g for g in groups), r["file"]
    test_labels = pd.read_csv(repo / "data" / "sample_test_labels.csv")
    assert len(test_labels) == len(list((repo / "data" / "sample_test").iterdir())) == 40
    assert set(test_labels["label"]) == set(counts.index)
    # held out by content: no test file is a byte copy of a training image (7 of the 40 were, eda --test found them)
    t = eda.compare_test(mf.load(tmp_path / "eda" / "manifest.csv"), mf.load(repo / "data" / "sample_test"))
    assert t["n_images"] == 40 and t["n_copies_of_train"] == 0, t["copies_of_train"]


def test_common_sizes_and_one_size_cells():
    """A set of one size (28 x 28, as Fashion-MNIST; 384 x 512, as the mask competition) is one cell in the middle
    of whole-pixel bins centred on the sizes (it was a sliver at 28.0 of a 27.5-28.5 axis with 0.2-pixel ticks, then
    a cell [28, 29) whose centre sat half a pixel off its tick), and summary.json names
    the most common sizes."""
    import numpy as np
    ok = pd.DataFrame({"width": [28] * 5 + [30, 30, 31], "height": [28] * 5 + [20, 20, 21]})
    assert eda.common_sizes(ok) == [{"width": 28, "height": 28, "images": 5}, {"width": 30, "height": 20, "images": 2},
                                    {"width": 31, "height": 21, "images": 1}]
    assert eda.common_sizes(ok, 1) == [{"width": 28, "height": 28, "images": 5}]
    w = h = np.full(100, 28.0)
    hist, xe, ye = eda.size_cells(w, h, 40)
    assert hist.shape == (40, 40) and hist.sum() == 100
    i, j = np.argwhere(hist)[0]
    assert (xe[i], xe[i + 1], ye[j], ye[j + 1]) == (27.5, 28.5, 27.5, 28.5)  # one whole pixel, centred on 28
    assert 18 <= i <= 21 and 18 <= j <= 21                                   # in the middle of the frame
    assert np.allclose(np.diff(xe), 1)
    hist, xe, _ = eda.size_cells(np.array([10.0, 500.0]), np.array([10.0, 500.0]), 40)
    assert xe[0] == 9.5 and xe[-1] == 500.5 and hist.sum() == 2               # a wide axis: min to max, by half a pixel


def test_eda_reports_common_sizes(tmp_path):
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2}, size=(24, 16))
    s = eda.run_eda(root, tmp_path / "eda", workers=1, samples_per_class=1)
    assert s["common_sizes"] == [{"width": 24, "height": 16, "images": 5}]
    summary, _, report = read_outputs(tmp_path / "eda")
    assert summary["common_sizes"] == s["common_sizes"] and "most common sizes" in report


def test_eda_test_set_beside_training_set(tmp_path):
    """--test: the painting write-up's test images were a quarter of the training images' side; eda says so, and
    which test images are byte copies of training images (their labels are known)."""
    import shutil

    from conftest import make_image
    root = make_image_folder(tmp_path / "raw", {"a": 4, "b": 3}, size=(48, 40))
    test = tmp_path / "test"
    for k in range(5):
        make_image(test / f"t{k}.png", size=(12, 10), seed=100 + k)
    shutil.copy(next((root / "b").iterdir()), test / "copy.png")
    out = tmp_path / "eda"
    before = tree_snapshot(test)
    r = runner.invoke(app, ["eda", str(root), "--test", str(test), "--out", str(out), "--workers", "1",
                            "--samples", "1"])
    assert r.exit_code == 0, r.output
    assert tree_snapshot(test) == before                          # the test folder is read, never written
    text = " ".join(r.output.split())
    assert "test images are 4.0x smaller than the training images (median side 11 px against 44 px)" in text
    assert "1 test image(s) are byte copies of training images" in text
    summary, _, report = read_outputs(out)
    t = summary["test"]
    assert t["n_images"] == 6 and t["scale_ratio"] == pytest.approx(4.0, rel=0.01)
    assert t["n_copies_of_train"] == 1 and t["copies_of_train"][0]["test"] == "copy.png"
    assert t["copies_of_train"][0]["train labels"] == "b"
    assert t["common_sizes"][0] == {"width": 12, "height": 10, "images": 5}
    assert "Test set beside the training set" in report and (out / "train_test_sizes.png").is_file()
    assert "their labels are known (listed below)" in report and "listed in report.html" not in report  # itself
    assert "their labels are known (listed in report.html and summary.json)" in text                  # the screen
    # greyscale JPEG test images for an RGB PNG training set: both shifts are said
    grey = tmp_path / "grey"
    for k in range(4):
        make_image(grey / f"g{k}.jpg", size=(48, 40), seed=200 + k)
    from PIL import Image
    for f in grey.iterdir():
        Image.open(f).convert("L").save(f)
    # (compare_test is summary.json's "test": run_eda's, as the command above showed; no plots drawn again for it)
    train = mf.load(root, announce=False)
    said = " ".join(eda.findings_on_test(eda.compare_test(train, mf.load(grey, announce=False))))
    assert "image modes differ between the sets: L 100% of test against 0% of training images" in said, said
    assert "RGB 0% of test against 100% of training images" in said
    assert "image formats differ between the sets: JPEG 100% of test against 0% of training images" in said
    # a test set at the training scale, no copies: nothing to say
    same = make_image_folder(tmp_path / "same", {"x": 3}, size=(48, 40), seed=7)
    t = eda.compare_test(train, mf.load(same, announce=False))
    assert eda.findings_on_test(t) == [] and t["scale_ratio"] == pytest.approx(1.0)
    # outputs never go under the test folder either
    r = runner.invoke(app, ["eda", str(root), "--test", str(test), "--out", str(test / "eda"), "-q"])
    assert r.exit_code == 2 and "inside" in r.output.lower(), r.output


def test_a_missing_test_folder_is_named_as_test_before_the_data_is_read(tmp_path, monkeypatch):
    """`eda raw --test tset` (a typo) said "tset does not exist; give a dataset folder or a manifest.csv" after the
    training data had been read: the line did not say which input it was. It names --test, first."""
    from imgcls import manifest as mf
    root = make_image_folder(tmp_path / "raw", {"a": 2}, size=(24, 24))
    monkeypatch.setattr(mf, "load", lambda *a, **k: pytest.fail("the data was read before --test was checked"))
    r = runner.invoke(app, ["eda", str(root), "--test", str(tmp_path / "tset"), "--out", str(tmp_path / "e"), "-q"])
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        f"error: --test {tmp_path / 'tset'} does not exist; give the competition's test images (a folder or a CSV / "
        f"manifest listing them)"], r.output


def test_eda_test_set_grey_like_preprocessed_grey_training_set_is_no_mode_shift(tmp_path):
    """preprocess wrote grey as RGB: eda --test of greyscale test images against a preprocessed greyscale training set
    warned 'L 100% of test against 0% of training ... (e.g. greyscale augmentation)', though both sets are grey.
    The modes are now compared as the pixels show them (a colour training set still gets the warning:
    test_eda_test_set_beside_training_set)."""
    import numpy as np
    from PIL import Image

    from imgcls import preprocess as pp
    rng = np.random.default_rng(0)
    raw, test = tmp_path / "raw", tmp_path / "test"
    for i in range(20):
        for path in (raw / f"c{i % 2}" / f"{i}.png", test / f"{i}.png"):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8), "L").save(path)
    processed = pp.run_preprocess(raw, tmp_path / "processed", pp.PreprocessConfig(size=32), workers=1,
                                  report=False)
    assert set(processed["mode"]) == {"L"}                     # preprocess now keeps a grey source grey
    # a set preprocessed before that (grey written as RGB): the headers differ, L test against RGB training
    older = tmp_path / "older"
    for p in (tmp_path / "processed").rglob("*.png"):
        (older / p.relative_to(tmp_path / "processed")).parent.mkdir(parents=True, exist_ok=True)
        Image.open(p).convert("RGB").save(older / p.relative_to(tmp_path / "processed"))
    # compare_test: summary.json's "test" (run_eda's: test_eda_test_set_beside_training_set), without the plots
    test_df = mf.load(test, announce=False)
    for train in (tmp_path / "processed", older):
        t = eda.compare_test(mf.load(train, announce=False), test_df)
        assert t["modes"] == {"L": 20} and t["shifts"]["mode"] == [], t["shifts"]
        assert not any("modes differ" in line for line in eda.findings_on_test(t))


@pytest.mark.rendered_figures
def test_class_names_the_font_lacks_give_one_line_not_a_warning_per_glyph(tmp_path, monkeypatch):
    """Korean class folders: matplotlib warned once per character per figure (UserWarning on stderr, -q too). Now
    its warning is not shown; with no font that has the characters (made so here: neither the bundled Korean font,
    as where koreanize-matplotlib is missing, nor an installed one; no test depends on the fonts installed) one info
    line says they are boxes in the PNGs; -q prints nothing."""
    import warnings

    import matplotlib

    from imgcls import report
    monkeypatch.setattr(report, "korean_font", lambda: None)
    monkeypatch.setattr(report, "font_with", lambda codepoints, exclude=(): None)
    monkeypatch.setitem(report._glyphs, "said", set())
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["sans-serif"])    # no earlier test's fallback font
    root = make_image_folder(tmp_path / "raw", {"고양이": 3, "강아지": 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app, ["eda", str(root), "--out", str(tmp_path / "eda"), "--workers", "1", "--samples", "1"])
        assert r.exit_code == 0, r.output
        monkeypatch.setitem(report._glyphs, "said", set())
        quiet = runner.invoke(app, ["eda", str(root), "--out", str(tmp_path / "eda2"), "--workers", "1", "-q",
                                    "--samples", "1"])
    assert not [w for w in caught if "Glyph" in str(w.message)]
    said = [ln for ln in r.output.splitlines() if "drawn as boxes" in ln]
    assert len(said) == 1 and "고" in said[0], r.output
    assert quiet.exit_code == 0 and quiet.output == ""
    assert "고양이" in read_outputs(tmp_path / "eda")[2]                 # the HTML has the names as text
    # in the same process (a notebook), another set's names the fonts lack are told too; the same names are not
    other = make_image_folder(tmp_path / "raw2", {"猫": 3, "고양이": 2})
    again = runner.invoke(app, ["eda", str(other), "--out", str(tmp_path / "eda3"), "--workers", "1", "--samples", "1"])
    said = [ln for ln in again.output.splitlines() if "drawn as boxes" in ln]
    assert again.exit_code == 0 and len(said) == 1 and "猫" in said[0], again.output
    same = runner.invoke(app, ["eda", str(root), "--out", str(tmp_path / "eda4"), "--workers", "1", "--samples", "1"])
    assert same.exit_code == 0 and "drawn as boxes" not in same.output, same.output


@pytest.mark.rendered_figures
def test_the_font_notice_counts_the_characters_it_leaves_out(monkeypatch, capsys):
    """The line on characters no installed font has named the first 8 and added '...', not how many more there
    were; it says so now, as every cut list does (options.shown), and a short list whole."""
    import matplotlib
    import matplotlib.pyplot as plt

    from imgcls import report
    monkeypatch.setattr(report, "font_with", lambda codepoints, exclude=(): None)
    monkeypatch.setitem(report._glyphs, "said", set())
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["sans-serif"])    # no earlier test's fallback font
    for text, said in (("가나다라마바사아자차카", "(가나다라마바사아 and 3 more)"), ("猫犬", "(犬猫)")):
        fig = plt.figure(figsize=(3, 1))
        fig.text(0.1, 0.5, text)
        report.figure_png(fig)
        err = " ".join(capsys.readouterr().err.split())
        assert f"characters no installed font has {said} are drawn as boxes" in err, err


@pytest.mark.rendered_figures
def test_a_users_own_missing_glyph_warning_still_reaches_them_after_an_imgcls_figure(tmp_path, monkeypatch):
    """imgcls's first figure added a filter for the whole process that ignored matplotlib's missing-glyph warning:
    a notebook's own figures with characters its fonts lack were boxes with no word after any imgcls step. imgcls
    holds the warning back in its own drawing only; the user's figure still warns."""
    import warnings

    import matplotlib

    from imgcls import report
    monkeypatch.setattr(report, "korean_font", lambda: None)
    monkeypatch.setattr(report, "font_with", lambda codepoints, exclude=(): None)
    monkeypatch.setitem(report._glyphs, "said", set())
    monkeypatch.setitem(matplotlib.rcParams, "font.family", ["sans-serif"])    # no earlier test's fallback font
    eda.plot_class_counts({"classes": {"고양이": 3, "cat": 1}, "imbalance_ratio": 3.0}, tmp_path / "ours.png")
    plt = report.pyplot()
    fig, ax = plt.subplots()        # the user's own, after: with the process's filters as imgcls left them
    ax.set_title("강아지")
    with warnings.catch_warnings(record=True) as theirs:
        fig.savefig(tmp_path / "theirs.png")
    plt.close(fig)
    assert [w for w in theirs if "Glyph" in str(w.message)], [str(w.message) for w in theirs]


def _drawing_font(text, ch: str) -> str:
    """The family of the font matplotlib draws `ch` of the Text `text` with: the first of its families (the
    fallback list, in order) whose font file has the character."""
    from matplotlib import font_manager

    from imgcls import report
    for family in text.get_fontfamily():
        prop = text.get_fontproperties().copy()
        prop.set_family(family)
        try:
            path = font_manager.findfont(prop, fallback_to_default=False)
        except ValueError:
            continue
        if ord(ch) in report._charmap(path):
            return font_manager.get_font(path).family_name
    return ""


@pytest.mark.rendered_figures
def test_korean_class_names_are_drawn_in_the_bundled_korean_font(tmp_path, monkeypatch):
    """Class folders 마스크 / 정답 라벨 were boxes in every PNG where no Korean font is installed (matplotlib's
    DejaVu Sans has no Hangul). Figures now fall back to NanumGothic, which the koreanize-matplotlib dependency
    ships: matplotlib warns of no missing glyph, the Hangul resolves to NanumGothic, Latin text keeps the default
    font. No installed font is looked for (font_with: None), so the test needs none."""
    import warnings

    import matplotlib
    from matplotlib import font_manager

    from imgcls import report
    monkeypatch.setattr(report, "font_with", lambda codepoints, exclude=(): None)
    figs, save = [], report.save_figure
    monkeypatch.setattr(report, "save_figure", lambda fig, path, **kw: figs.append(fig) or path)
    with matplotlib.rc_context({"font.family": ["sans-serif"]}):            # as a fresh process has it
        default = font_manager.get_font(font_manager.findfont(font_manager.FontProperties())).family_name
        eda.plot_class_counts({"classes": {"마스크": 3, "정답 라벨": 2, "cat": 1}, "imbalance_ratio": 3.0},
                              tmp_path / "counts.png")
        fig, = figs
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.savefig(tmp_path / "raw.png")          # matplotlib's own warnings (save_figure's are not shown)
        assert not [w for w in caught if "Glyph" in str(w.message)], [str(w.message) for w in caught]
        labels = {t.get_text(): t for t in fig.axes[0].get_xticklabels()}
        assert _drawing_font(labels["마스크"], "마") == "NanumGothic"
        assert _drawing_font(labels["정답 라벨"], "라") == "NanumGothic"
        assert _drawing_font(labels["cat"], "c") == default != "NanumGothic"
        save(fig, tmp_path / "counts.png")
    assert (tmp_path / "counts.png").stat().st_size > 0


def test_without_koreanize_matplotlib_no_korean_font_is_added(monkeypatch):
    """A user's environment without the package (or its font files): no font, the family list as it was (and
    Hangul then boxes, said once: test_class_names_the_font_lacks_give_one_line_not_a_warning_per_glyph)."""
    import importlib.util

    import matplotlib

    from imgcls import report
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    assert report.korean_font.__wrapped__() is None
    monkeypatch.setattr(report, "korean_font", report.korean_font.__wrapped__)
    with matplotlib.rc_context({"font.family": ["sans-serif"]}):
        report.pyplot()
        assert matplotlib.rcParams["font.family"] == ["sans-serif"]


def test_a_font_that_has_the_missing_characters_is_added_as_a_fallback(tmp_path):
    """Where an installed font has them, the figure is drawn again with it as a fallback: no boxes, no line. The
    character is one matplotlib's own fonts have beside its default one, so the test needs no font installed."""
    import warnings

    import matplotlib
    from matplotlib import font_manager

    from imgcls import report
    default = report._charmap(font_manager.findfont(font_manager.FontProperties()))
    other = sorted(set().union(*(report._charmap(e.fname) for e in font_manager.fontManager.ttflist
                                 if "last resort" not in e.name.lower())) - default)
    ch = chr(next(c for c in other if report.font_with({c}) is not None))
    with matplotlib.rc_context():
        plt = report.pyplot()
        fig, ax = plt.subplots()
        ax.set_title(f"class {ch}")
        report.save_figure(fig, tmp_path / "a.png")
        font = report.font_with({ord(ch)})
        assert matplotlib.rcParams["font.family"][-1] == font
        fig, ax = plt.subplots()                     # a later figure uses it from the start
        ax.set_title(f"class {ch}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.savefig(tmp_path / "b.png")
        plt.close(fig)
    assert not [w for w in caught if "Glyph" in str(w.message)]


def test_an_empty_class_folder_is_said_and_reported(tmp_path):
    """A class folder with no images (or only other files) gives no class: one warning line, summary.json and the
    report name it (it was silently left out)."""
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 2})
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not an image")
    r = runner.invoke(app, ["eda", str(root), "--out", str(tmp_path / "eda"), "--workers", "1", "-q", "--samples", "1"])
    assert r.exit_code == 0, r.output
    said = [ln for ln in r.output.splitlines() if "hold no images" in ln]
    assert len(said) == 1 and said[0].startswith("warning: 2 class folder(s)") and "empty, notes" in said[0]
    summary, _, page = read_outputs(tmp_path / "eda")
    assert summary["empty_class_folders"] == ["empty", "notes"] and set(summary["classes"]) == {"a", "b"}
    assert "class folders without images" in page


def test_eda_takes_the_empty_class_folders_from_the_read(tmp_path, monkeypatch):
    """eda listed the image root once more (a new FolderView) for the empty class folders the folder's read had
    found and warned of: it takes the read's."""
    from conftest import count_folder_listings
    root = make_image_folder(tmp_path / "raw", {"a": 2, "b": 1}, size=(16, 16))
    (root / "empty").mkdir()
    listed = count_folder_listings(monkeypatch)
    summary = eda.run_eda(root, tmp_path / "eda", workers=1, samples_per_class=1)
    assert summary["empty_class_folders"] == ["empty"]
    assert listed.count(root) == 1, listed


def test_empty_class_folders_of_the_split_folder_layout(tmp_path):
    from imgcls.layouts import empty_class_folders
    for sub in ("train/a", "train/b", "val/a", "val/b", "test"):
        (tmp_path / sub).mkdir(parents=True)
    paths = ["train/a/1.png", "train/b/1.png", "val/a/1.png", "test/1.png"]
    assert empty_class_folders(tmp_path, paths) == ["val/b"]           # test/'s images need no class folder
    assert empty_class_folders(tmp_path / "train", ["a/1.png"]) == ["b"]


def test_a_rerun_leaves_no_plot_of_the_earlier_run(tmp_path):
    """eda again into the same --out on other data: the earlier run's class counts (the new set is unlabeled), its
    test comparison and its second sample page are gone, not left beside this run's files as if they were its."""
    root = make_image_folder(tmp_path / "raw", {f"k{i:02d}": 1 for i in range(eda.CLASSES_PER_GRID + 2)},
                             size=(16, 16))
    test = make_image_folder(tmp_path / "test", {"": 3}, size=(16, 16), seed=7)
    out = tmp_path / "eda"
    eda.run_eda(root, out, samples_per_class=1, test=test)
    first = {p.name for p in out.glob("*.png")}
    assert {"class_counts.png", "train_test_sizes.png", "samples_1.png", "samples_2.png"} <= first
    (out / "mine.png").write_bytes(b"not eda's")            # a file of the user's own is not eda's to delete
    eda.run_eda(test, out, samples_per_class=1)
    assert {p.name for p in out.glob("*.png")} == {"size_heatmap.png", "aspect_ratio.png", "samples.png", "mine.png"}


@pytest.mark.parametrize("counts", [{"": 3}, {"a": 2, "b": 2}])
def test_the_closing_line_counts_the_pngs_written(tmp_path, counts):
    """An unlabeled set has no class_counts.png: the last line said 4 PNGs beside 3."""
    root = make_image_folder(tmp_path / "raw", counts, size=(16, 16))
    out = tmp_path / "eda"
    r = runner.invoke(app, ["eda", str(root), "--out", str(out), "--workers", "1", "--samples", "1"])
    assert r.exit_code == 0, r.output
    assert f"{len(list(out.glob('*.png')))} PNGs" in r.output, r.output


def test_empty_class_folders_name_the_class_nfc_and_skip_another_spelling_of_a_class(tmp_path, capsys):
    """Class names are NFC (a macOS zip's folders are NFD), but the empty class folders were named as on disk: an
    empty NFD folder '정상' beside the NFC '정상' holding the images was said as a class the data does not have. They
    are named as the class each would be (NFC, as eda's classes), and a spelling of a class the data has is none."""
    import unicodedata
    from imgcls.layouts import empty_class_folders
    nfd = lambda s: unicodedata.normalize("NFD", s)       # noqa: E731
    root = make_image_folder(tmp_path / "raw", {"정상": 2, "b": 1})
    (root / nfd("정상")).mkdir()
    (root / nfd("빈칸")).mkdir()
    assert empty_class_folders(root, mf.load(root, scan=False)["path"]) == ["빈칸"]
    said = [ln for ln in capsys.readouterr().err.splitlines() if "hold no images" in ln]
    assert len(said) == 1 and said[0].endswith(": 빈칸") and "1 class folder(s)" in said[0], said


def test_attributes_count_a_person_spelled_nfd_and_nfc_once(tmp_path, monkeypatch):
    """The age histogram counts each person (group) once; a person whose id a macOS zip spelled NFD in some rows and
    NFC in others was two persons. eda now reads the group in NFC (manifest.nfc_classes, as split does) for the count;
    the manifest (which eda writes) keeps each row's spelling."""
    import unicodedata

    import matplotlib.axes

    from conftest import make_image
    root = tmp_path / "data"
    people = [("한국", "NFC", 30), ("한국", "NFD", 30), ("Renée", "NFC", 50), ("Renée", "NFC", 50)]
    groups = [unicodedata.normalize(form, g) for g, form, _ in people]
    assert groups[0] != groups[1]
    for i in range(len(people)):
        make_image(root / f"{i}.png", size=(16, 16), seed=i)
    pd.DataFrame({"path": [f"{i}.png" for i in range(len(people))], "root": str(root), "label": "a",
                  "group": groups, "mask": 0, "gender": [0, 0, 1, 1], "age": [a for *_, a in people]}
                 ).to_csv(root / "manifest.csv", index=False)
    drawn, real_hist = [], matplotlib.axes.Axes.hist
    monkeypatch.setattr(matplotlib.axes.Axes, "hist", lambda self, x, *a, **kw: (drawn.append(sorted(x)),
                                                                                   real_hist(self, x, *a, **kw))[1])
    df = mf.load(root, workers=1)
    eda.plot_attributes(df, tmp_path / "attributes.png", (30, 60))
    assert drawn == [[30, 50]], drawn                  # two persons, one age each (was [30, 30, 50])
    assert df.sort_values("path")["group"].tolist() == groups      # the manifest eda writes keeps the spellings


def test_attributes_rows_without_a_group_are_each_a_person(tmp_path, monkeypatch):
    """A competition CSV read without --group-col has group '' on every row: the age histogram drew one age (every
    row taken for one person); each row without a group now counts as its own person, beside the grouped ones."""
    import matplotlib.axes

    from conftest import make_image
    root = tmp_path / "data"
    groups, ages = ["", "", "", "p1", "p1"], [20, 30, 40, 50, 50]
    for i in range(len(groups)):
        make_image(root / f"{i}.png", size=(16, 16), seed=i)
    pd.DataFrame({"path": [f"{i}.png" for i in range(len(groups))], "root": str(root), "label": "a",
                  "group": groups, "mask": 0, "gender": 0, "age": ages}).to_csv(root / "manifest.csv", index=False)
    drawn, real_hist = [], matplotlib.axes.Axes.hist
    monkeypatch.setattr(matplotlib.axes.Axes, "hist", lambda self, x, *a, **kw: (drawn.append(sorted(x)),
                                                                                   real_hist(self, x, *a, **kw))[1])
    eda.plot_attributes(mf.load(root, workers=1), tmp_path / "attributes.png", (30, 60))
    assert drawn == [[20, 30, 40, 50]], drawn             # was [20, 50]: the three ungrouped rows one person


def test_eda_keeps_the_matplotlib_backend_a_python_session_chose(tmp_path):
    """A notebook's backend (Jupyter's inline one, here "pdf") stays after run_eda draws its figures: eda forced Agg,
    and the notebook's own plt.show() showed nothing for the rest of the session. In a fresh process, so that the
    backend chosen is the script's alone."""
    import os
    import subprocess
    import sys
    src = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3})
    code = ("import matplotlib; matplotlib.use('pdf'); import matplotlib.pyplot as plt\n"
            "from imgcls.eda import run_eda\n"
            f"run_eda({str(src)!r}, {str(tmp_path / 'eda')!r}, workers=1, samples_per_class=1)\n"
            "print('backend', matplotlib.get_backend())\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "backend pdf" in r.stdout, r.stdout
    assert list((tmp_path / "eda").glob("*.png"))


def test_eda_stopped_between_its_plots_leaves_the_earlier_set_whole(tmp_path, monkeypatch):
    """eda stopped (Ctrl-C) after its first plots left new PNGs beside the earlier run's summary.json and report:
    two runs mixed. Its files are written as one set (outputs.output_set): a stopped run leaves the earlier set
    byte for byte (and nothing temporary); a rerun writes its own whole set, sweeping what a kill -9 left."""
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    out = tmp_path / "eda"
    eda.run_eda(root, out, samples_per_class=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"summary.json", "report.html", "manifest.csv", "size_heatmap.png"} <= set(before)
    make_image_folder(tmp_path / "raw", {"c": 3}, size=(20, 20), seed=3)       # the data changed since

    def stopped(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(eda, "plot_aspect_ratio", stopped)          # after the class counts and the size heatmap
    with pytest.raises(KeyboardInterrupt):
        eda.run_eda(root, out, samples_per_class=1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    (out / ".eda.k3j4h5g6.tmp").mkdir()                               # a kill -9 while writing: swept
    (out / ".eda.k3j4h5g6.tmp" / "summary.json").write_text("{}")
    (out / ".manifest.csv.a1b2c3d4.tmp.csv").write_text("x")
    eda.run_eda(root, out, samples_per_class=1)
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert json.loads((out / "summary.json").read_text())["n_images"] == 9
    assert all(p.is_file() for p in mf.image_paths(mf.load(out / "manifest.csv", announce=False)))   # its roots


@pytest.fixture(scope="module")
def second_eda_waited(tmp_path_factory) -> Path:
    """An eda of raw into eda, with --test (its train_test_sizes.png), during which, as it writes its report.html, a
    second eda of the same data without --test starts into the same --out: the second waits its turn, saying so, and
    has ended; returns the --out. Built once (the second eda is a process of its own: ~3 s CPU) for the tests that
    read what the second one left."""
    tmp_path = tmp_path_factory.mktemp("second_eda")
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    test = make_image_folder(tmp_path / "test", {"": 3}, size=(16, 16), seed=7)
    out = tmp_path / "eda"
    write_report = eda.write_report
    started = []

    def written_while_another_eda_starts(path, *a, **k):      # the first eda's report.html, being written
        started.append(second_command_while_writing(path, ["eda", str(root), "--out", str(out), "--workers", "1",
                                                           "--samples", "1"]))
        write_report(path, *a, **k)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eda, "write_report", written_while_another_eda_starts)
        eda.run_eda(root, out, samples_per_class=1, test=test)
    second, said = started[0]
    assert second.wait(120) == 0, "".join(said)
    assert any("another imgcls command is writing its files there" in line for line in said), "".join(said)
    return out


def test_a_second_eda_into_the_same_out_waits_for_the_first_one_s_set(second_eda_waited):
    """eda swept every temporary file under its --out (a kill -9's) before it took its turn at the folder: a second
    eda into the same --out (outputs/eda, the default) deleted the first one's file being written in its staging
    folder, and the first failed with a FileNotFoundError traceback. The sweep is made while the run holds the
    folder (outputs.output_set's temps): the second waits, saying so, then writes its own whole set."""
    out = second_eda_waited
    assert {"summary.json", "report.html", "manifest.csv"} <= {p.name for p in out.iterdir()}
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_a_second_eda_that_waited_for_the_first_one_removes_its_plots_this_one_does_not_draw(second_eda_waited):
    """A second eda into an --out another eda was writing looked for the earlier run's plots before it waited its
    turn: the first one's train_test_sizes.png (a run with --test) was not there yet, and stayed beside the second
    one's report, summary and manifest, which have no test set. They are looked for while the run holds --out."""
    out = second_eda_waited
    assert "test" not in json.loads((out / "summary.json").read_text())
    assert not (out / "train_test_sizes.png").exists()


def test_eda_stopped_into_a_new_folder_leaves_no_empty_folder(tmp_path, monkeypatch):
    """`imgcls eda big --out edI` stopped (Ctrl-C) after its scan left edI behind, empty: made before any file was
    written. The folders a stopped eda made (outputs.output_set makes --out, the missing ones above it too) are
    removed while empty; a folder that was there before stays."""
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))

    def stopped(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(eda, "plot_aspect_ratio", stopped)
    with pytest.raises(KeyboardInterrupt):
        eda.run_eda(root, tmp_path / "runs" / "edI", samples_per_class=1)
    assert not (tmp_path / "runs").exists()
    (tmp_path / "mine").mkdir()                 # the user's own empty folder: kept
    with pytest.raises(KeyboardInterrupt):
        eda.run_eda(root, tmp_path / "mine" / "edI", samples_per_class=1)
    assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())
    with pytest.raises(KeyboardInterrupt):
        eda.run_eda(root, tmp_path / "mine", samples_per_class=1)
    assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())


def test_eda_rerun_after_one_stopped_among_its_renames_says_it_replaces_them(tmp_path, monkeypatch, capsys):
    """A first eda into a new folder stopped among the renames of its set (a kill, Ctrl-C) left the files it had
    placed; the rerun replaced them as its own (the placing journal says so) without the line every step says as
    it replaces its own earlier output, which eda said only when its summary.json and report.html were there.
    The rerun says it now."""
    from conftest import stop_after_first_rename
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    out = tmp_path / "eda"
    placed = stop_after_first_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        eda.run_eda(root, out, samples_per_class=1)
    monkeypatch.undo()
    assert placed and (out / placed[0]).is_file() and not (out / "summary.json").exists()
    said = []
    monkeypatch.setattr(eda, "info", lambda msg, *a, **k: said.append(msg))
    eda.run_eda(root, out, samples_per_class=1)
    assert f"{out} holds an earlier eda output; this run replaces it once its files are all written (--out " \
           f"FOLDER keeps both)" in said, said
    said.clear()
    eda.run_eda(root, tmp_path / "new", samples_per_class=1)         # a new folder: nothing replaced, not said
    assert not any("holds an earlier" in m for m in said), said


def test_an_io_error_among_the_renames_is_one_line_saying_what_is_left(tmp_path, monkeypatch):
    """An OSError (EIO, EACCES) on a rename of OutputSet._commit, `imgcls eda DATA --out O` over an earlier eda
    output, showed a traceback and left a partly placed set without a word. It is one line, exit 2: what failed,
    how many files were placed and that the same command again replaces them; the rerun does, whole."""
    import errno

    from typer.testing import CliRunner

    from conftest import stop_after_first_rename
    from imgcls.cli import app
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    out = tmp_path / "eda"
    argv = ["eda", str(root), "--out", str(out), "--samples", "1"]
    assert CliRunner().invoke(app, argv).exit_code == 0
    placed = stop_after_first_rename(monkeypatch, error=OSError(errno.EIO, "Input/output error"))
    res = CliRunner().invoke(app, argv)
    flat = " ".join(res.output.split())
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), (res.output, res.exception)
    assert len(placed) == 1 and "cannot put " in flat and f"into place in {out} (Input/output error; 1 of its " in flat
    assert f"files placed): some of its files were already renamed into {out}, the others not; the same command " \
           f"again replaces them" in flat, flat
    monkeypatch.undo()
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 0 and (out / "summary.json").is_file() and (out / "report.html").is_file(), res.output
    assert not list(out.glob(".*placing*")), list(out.iterdir())


def test_matplotlib_s_slow_legend_note_is_not_shown(tmp_path, monkeypatch):
    """matplotlib warns 'Creating legend with loc="best" can be slow' when placing a legend took over a second: on a
    busy machine eda's histograms printed it (a UserWarning with a source line) though nothing was wrong."""
    import warnings

    import matplotlib.legend

    from imgcls import report
    real = matplotlib.legend.Legend._find_best_position

    def slow(self, *a, **k):            # as matplotlib says it when the placement took long
        warnings.warn('Creating legend with loc="best" can be slow with large amounts of data.', UserWarning)
        return real(self, *a, **k)
    monkeypatch.setattr(matplotlib.legend.Legend, "_find_best_position", slow)
    plt = report.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="train")
    ax.legend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report.save_figure(fig, tmp_path / "a.png")
    assert (tmp_path / "a.png").is_file()
    assert not [w for w in caught if "legend" in str(w.message)], [str(w.message) for w in caught]


def test_profiles_age_histogram_ticks_count_whole_people(tmp_path, profile_folder, monkeypatch):
    """attributes.png's age histogram counts people (a handful per age): its y axis had ticks at 0.5, 1.5, ...; it
    now has whole numbers only."""
    from imgcls import report
    figs = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, **kw: figs.append(fig) or path)
    df = mf.load(profile_folder, mf.LayoutOptions(), scan=True)
    eda.plot_attributes(df, tmp_path / "attributes.png", (30, 60))
    ax = figs[0].axes[2]
    figs[0].canvas.draw()
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_ylabel() == "profiles"


def test_profiles_mask_and_gender_bars_say_they_count_images(tmp_path, profile_folder, monkeypatch):
    """attributes.png's mask and gender bars had no y label beside the age histogram's 'profiles', so a reader
    could take 120 wear for 120 people: they count images (7 per profile), and now say so."""
    from imgcls import report
    figs = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, **kw: figs.append(fig) or path)
    eda.plot_attributes(mf.load(profile_folder, mf.LayoutOptions(), scan=True), tmp_path / "attributes.png", (30, 60))
    assert [ax.get_ylabel() for ax in figs[0].axes] == ["images", "images", "profiles"]


def test_profiles_eda_figures_name_the_class_ids(profiles_eda):
    """class_counts.png and the sample grids titled a profile dataset's classes 0..17 only, while the report's
    table said what they mean: the figures now name them too ('4 (wear, female, 30-59)'), as summary.json does."""
    _, _, s, texts = profiles_eda
    for c, meaning in s["class_meanings"].items():
        assert f"{c} ({meaning})" in texts                            # a class_counts.png tick
        assert any(t.startswith(f"{c} ({meaning}): ") for t in texts)  # a sample grid row's title


def test_a_rerun_reads_only_the_images_changed_since(tmp_path, monkeypatch, capsys):
    """eda again into its own --out takes the scan of each unchanged image from its earlier manifest.csv (a rerun read
    every image again: a minute at 30k images) and reads the one rewritten since; the outputs are those of a full
    scan."""
    from imgcls import io as imgio
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    out = tmp_path / "eda"
    eda.run_eda(root, out, samples_per_class=1)
    first = (out / "manifest.csv").read_bytes()
    probed = []
    real = imgio.probe
    monkeypatch.setattr(imgio, "probe", lambda *a, **k: probed.append(a[0]) or real(*a, **k))
    capsys.readouterr()
    eda.run_eda(root, out, samples_per_class=1)
    assert not probed and (out / "manifest.csv").read_bytes() == first
    assert "reused the scan of 6 images" in capsys.readouterr().err
    changed = sorted((root / "b").iterdir())[0]
    Image.open(sorted((root / "a").iterdir())[0]).resize((20, 18)).save(changed)
    eda.run_eda(root, out, samples_per_class=1)
    assert probed == [str(changed)]
    fresh = tmp_path / "eda2"
    eda.run_eda(root, fresh, samples_per_class=1)
    assert (out / "manifest.csv").read_bytes() == (fresh / "manifest.csv").read_bytes()


def test_a_rerun_over_a_scan_of_another_scan_version_scans_every_image_again(tmp_path, capsys):
    """A fix that reads some file's size otherwise (a PNG's orientation after its pixels) left the sizes an earlier
    eda recorded in place: a rerun into the same --out took the scan of every unchanged file from its manifest.csv.
    A scan is taken only from a run that recorded this imgcls's io.SCAN_VERSION (summary.json's scan_version)."""
    import json

    import pandas as pd

    from imgcls import io as imgio
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    out = tmp_path / "eda"
    eda.run_eda(root, out, samples_per_class=1)
    first = (out / "manifest.csv").read_bytes()
    assert json.loads((out / "summary.json").read_text())["scan_version"] == imgio.SCAN_VERSION
    table = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    table.loc[0, ["width", "height"]] = [8, 32]                 # as an older scan recorded a turned image
    table.to_csv(out / "manifest.csv", index=False)
    summary = json.loads((out / "summary.json").read_text())
    del summary["scan_version"]                                  # an imgcls from before the version
    (out / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    eda.run_eda(root, out, samples_per_class=1)
    said = " ".join(capsys.readouterr().err.split())
    assert (out / "manifest.csv").read_bytes() == first
    assert (f"the earlier {out / 'manifest.csv'} was scanned by an imgcls of another scan version (1, now "
            f"{imgio.SCAN_VERSION}): every image is scanned again") in said and "reused the scan" not in said, said
    capsys.readouterr()
    eda.run_eda(root, out, samples_per_class=1)
    assert "reused the scan of 6 images" in capsys.readouterr().err


def test_a_rerun_says_plainly_that_any_image_changed_since_is_scanned_again(tmp_path, capsys):
    """eda again into its own --out said 'reused the scan of 6 images from the earlier eda/manifest.csv (each file
    checked: one changed since is read again)', read as 'one file changed'. It says any such file is."""
    root = make_image_folder(tmp_path / "raw", {"a": 3, "b": 3}, size=(16, 16))
    out = tmp_path / "eda"
    eda.run_eda(root, out, samples_per_class=1)
    capsys.readouterr()
    eda.run_eda(root, out, samples_per_class=1)
    said = " ".join(capsys.readouterr().err.split())
    assert (f"reused the scan of 6 images from the earlier {out / 'manifest.csv'} (each checked against its file: "
            f"any image changed since is scanned again)") in said, said


def test_the_class_count_figure_of_one_class_says_1_class_and_no_ratio(tmp_path, monkeypatch):
    """eda of a folder of one class titled its figure 'images per class (1 classes, max/min = 1.00)': a plural of one
    and a ratio of the class with itself. It says '(1 class)'; two classes keep their count and ratio."""
    from imgcls import report
    titles, save = [], report.save_figure

    def spy(fig, path, **kw):
        titles.append(fig.axes[0].get_title())
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    eda.plot_class_counts({"classes": {"only": 29}, "imbalance_ratio": 1.0}, tmp_path / "one.png")
    eda.plot_class_counts({"classes": {"a": 30, "b": 3}, "imbalance_ratio": 10.0}, tmp_path / "two.png")
    assert titles == ["images per class (1 class)", "images per class (2 classes, max/min = 10.0)"]


def test_the_train_test_sizes_figure_labels_both_axes_and_says_each_set_s_images(tmp_path, monkeypatch):
    """train_test_sizes.png's aspect-ratio panel had no y label (the scale panel's 'share of images' only), and
    neither legend said of how many images the shares are: a test set of 3 images drew bars as tall as one of
    3,000. Both panels say 'share of images', each legend entry its set's images."""
    from imgcls import report
    drawn, save = [], report.save_figure

    def spy(fig, path, **kw):
        drawn.extend((ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()]) for ax in fig.axes)
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    train = pd.DataFrame({"width": [64, 64, 32, 128], "height": [64, 32, 32, 128], "error": ""})
    test = pd.DataFrame({"width": [28], "height": [28], "error": ""})
    eda.plot_train_test_sizes(train, test, tmp_path / "t.png")
    assert drawn == [("share of images", ["train (4 images)", "test (1 image)"])] * 2


def test_sample_grid_titles_start_at_the_same_left_edge_whatever_the_first_image(tmp_path, monkeypatch):
    """A class whose first sampled image is a portrait had its title indented (eda of openclipart: 'plants (7)',
    'electronics (3)' stood right of the others): the title sits at the left of the first image's axes, which
    an image of equal aspect shrinks and centres in its cell. The first column's images keep to the cell's left
    edge, so every row's title starts where the others' do."""
    from conftest import make_image
    from imgcls import report
    lefts, save = [], report.save_figure

    def spy(fig, path, **kw):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        firsts = [ax for ax in fig.axes if ax.get_title(loc="left")]
        lefts.extend(round(ax._left_title.get_window_extent(r).x0) for ax in firsts)     # the loc="left" title
        return save(fig, path, **kw)
    monkeypatch.setattr(report, "save_figure", spy)
    make_image(tmp_path / "raw" / "tall" / "0.png", size=(20, 60), seed=1)
    make_image(tmp_path / "raw" / "wide" / "0.png", size=(60, 30), seed=2)
    df = mf.load(tmp_path / "raw", scan=True, announce=False)
    eda.plot_sample_grids(df, tmp_path / "s", 0, per_class=2)
    assert len(lefts) == 2 and lefts[0] == lefts[1], lefts
