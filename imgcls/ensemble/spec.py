"""Members (a run, or a k-fold run's folds) and the ensemble spec (`spec.yaml`) predict reads: written with paths
relative to it, read back with every field checked; a member's validation / out-of-fold predictions (`read_oof`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

# the spec file's reading and checks live in ensemble.config, which `imgcls runs` reads specs with (runs, whose run
# states warn_unfinished says, must not import this module)
from imgcls.ensemble.config import BUILD_ENSEMBLE, ENSEMBLES_DIR, check_spec, read_spec_doc
from imgcls.errors import UserError
from imgcls.options import shown
from imgcls.outputs import ENSEMBLE_OOF_CSV, SPEC_NAME, interrupted_leftovers, yaml_dump
from imgcls.run_names import BEST_PT, LAST_PT, PER_CLASS_CSV, RUN_CONFIG, VAL_PREDICTIONS, fold_set

if TYPE_CHECKING:
    from imgcls.train.config import TrainConfig



@dataclass
class Member:
    name: str
    run: Path                      # the run folder (or a checkpoint file)
    checkpoints: list[Path]
    weight: float = 1.0

    @cached_property
    def recorded_config(self) -> TrainConfig | None:
        """The train options the member's run recorded (TrainConfig of its config.yaml, beside its checkpoint or
        its fold's); None where nothing is known (a bare checkpoint, a folder not written by imgcls train). Read
        once per member: predict's --max-pixels default, its TTA mirror warning and its --eval leak check ask."""
        from imgcls.train.config import TrainConfig
        folder = self.run if self.run.is_dir() else self.run.parent
        try:
            return TrainConfig.load(folder / RUN_CONFIG)
        except UserError:
            return None


@dataclass
class EnsembleSpec:
    name: str
    method: str
    members: list[Member]
    classes: list[str]
    path: Path | None = None       # the spec file
    scores: dict = field(default_factory=dict)
    combine: str = "vote"          # vote | profile (see the module doc)
    # what the fitted weights optimised (--weight-metric, config.weight_metric's default where not typed); None:
    # weights not fitted (typed, equal, a profile's), or a spec.yaml written before it was recorded (the default)
    weight_metric: str | None = None

    @property
    def weights(self) -> list[float]:
        return [m.weight for m in self.members]

    def folders(self) -> set[Path]:
        """Every folder this ensemble reads: its own (the spec file's), each member's run folder and the folders of
        their checkpoints (a k-fold run's fold_* folders)."""
        return member_folders(self.members) | ({self.path.parent} if self.path is not None else set())

    def running(self) -> "EnsembleSpec":
        """The spec a prediction runs: under a weighted or hard vote a member of weight 0 adds nothing to any row
        (a weight fit often gives one 0), so it is left out rather than run; everything else as it is."""
        if self.combine != "vote" or self.method == "soft" or all(m.weight > 0 for m in self.members):
            return self
        from dataclasses import replace
        return replace(self, members=[m for m in self.members if m.weight > 0])


def with_absolute_paths(spec: EnsembleSpec) -> EnsembleSpec:
    """`spec` with its spec file's and its members' paths absolute (os.path.abspath: symlinks kept as named), as
    build_ensemble returns it: a relative one meant the folder it ran from, lost to a notebook that changes folder
    (run_predict's summary names them so)."""
    for m in spec.members:
        m.run, m.checkpoints = Path(os.path.abspath(m.run)), [Path(os.path.abspath(c)) for c in m.checkpoints]
    if spec.path is not None:
        spec.path = Path(os.path.abspath(spec.path))
    return spec


def member_folders(members: Sequence[Member]) -> set[Path]:
    """The members' run folders and the folders of their checkpoints (a k-fold run's fold_* folders)."""
    found = set()
    for m in members:
        found.add(m.run if m.run.is_dir() else m.run.parent)
        found.update(c.parent for c in m.checkpoints)
    return found


def member_from_run(run: str | os.PathLike, which: str = "best", beside: Sequence[str | os.PathLike] = ()) -> Member:
    """The member of `run` (a run folder, a k-fold set's, a fold's, or a checkpoint file); `beside`: the runs given
    with it (find_checkpoints)."""
    from imgcls.train.rundir import find_checkpoints
    run = Path(run)
    ckpts = find_checkpoints(run, which, beside)
    name = member_name(run)
    if len(ckpts) == 1:     # a k-fold set being trained or stopped is refused whole (check_kfold_finished); one run
        warn_unfinished(run, ckpts[0])          # or fold is used as it is (named on purpose), said
    return Member(name=name, run=run, checkpoints=ckpts)


def member_name(run: Path) -> str:
    """A member's name (spec.yaml, the tables, the ensemble's and the predictions' folder): its run folder's; a
    fold's is named by its set too, RUN.fold_K (another set's fold_0 is another member). A run's or a fold's own
    checkpoint given itself is named as its folder: best.pt, what the folder predicts with, as the folder
    (a/best.pt b/best.pt are a and b, not best and best_1), last.pt as RUN.last (another model of that run);
    another checkpoint file by its name without the suffix."""
    path = Path(os.path.abspath(run))           # `.` named by the folder it is; links kept
    suffix = ""
    if path.is_file():
        if path.name not in (BEST_PT, LAST_PT):     # the files imgcls train writes (find_checkpoints)
            return path.stem
        suffix = "" if path.name == BEST_PT else ".last"
        path = path.parent
    if fold_set(path) is not None:         # a plain run named fold_0 (in a folder of runs, or a run's) is fold_0
        return f"{path.resolve().parent.name}.{path.name}{suffix}"
    return path.name + suffix


def _name_root(run: Path) -> Path:
    """The file or folder whose name member_name's name ends with (a fold's: its set; a best.pt's: its run); the
    folders above it tell two members of one name apart (unique_member_names)."""
    path = Path(os.path.abspath(run))
    if path.is_file() and path.name in (BEST_PT, LAST_PT):
        path = path.parent
    if fold_set(path) is not None:
        return path.resolve().parent
    return path


def unique_member_names(members: Sequence[Member]) -> None:
    """Names the members apart where member_name gives two the same (runs x of two folders, trial_0000 of two
    studies): each clashing name gets the folders above its run, one at a time, until it is unique (a/x and b/x
    are a.x and b.x, s1/trial_0000 and s2/trial_0000 s1.trial_0000 and s2.trial_0000; '.' as a fold's set.fold_K,
    since a name is a folder name too); names that no folder tells apart get _1, _2, ... not taken by another."""
    names = [m.name for m in members]
    above = [[p.name for p in _name_root(m.run).parents if p.name] for m in members]
    depth = [0] * len(members)
    while True:
        clashing = [i for i, n in enumerate(names) if names.count(n) > 1 and depth[i] < len(above[i])]
        if not clashing:
            break
        for i in clashing:
            names[i] = f"{above[i][depth[i]]}.{names[i]}"
            depth[i] += 1
    for i, n in enumerate(names):
        if names.count(n) > 1 and names.index(n) != i:
            k = 1
            while f"{n}_{k}" in names:
                k += 1
            names[i] = f"{n}_{k}"
    for m, n in zip(members, names):
        m.name = n


def warn_unfinished(run: Path, checkpoint: Path) -> None:
    """One warning line where the run (or fold) of `checkpoint` has not finished: imgcls train is training it now
    (warn_training_now), or its training stopped before its epochs (a Ctrl-C, a crash): its checkpoint is then a
    partial run's model, said with its state and the epochs it did as `imgcls runs` reads them ('a stopped run
    (2/6 epochs)', 'a crashed run (2/6 epochs)': the leaderboard's 'stopped 2/6', 'crashed 2/6')."""
    if warn_training_now(run, checkpoint):
        return
    from imgcls.runs import stopped_state
    stopped = stopped_state(checkpoint.parent)
    if stopped is None:
        return
    from imgcls.console import warn
    from imgcls.train.rundir import finish_fix
    # a fold given alone is finished by resuming its k-fold set (train refuses --resume on the fold)
    folder = fold_set(checkpoint.parent) or checkpoint.parent
    warn(f"{run} is a {stopped[0]} run ({stopped[1]} epochs): its {checkpoint.name} is from a partial run, used as "
         f"it is; {finish_fix(folder)}")


def warn_training_now(run: Path, checkpoint: Path) -> bool:
    """One warning line where imgcls train is training `run` now: its checkpoint is rewritten after each epoch, so
    what predicts is a half-trained model, not the run's final one. Whether it said so."""
    from imgcls.train.rundir import training_now
    now = training_now(checkpoint)
    if now is None:
        return False
    from imgcls.console import warn
    warn(f"{run} is being trained by imgcls train now: its {checkpoint.name} is from an unfinished run"
         f"{f' ({now})' if now else ''}; it is used as it is, wait for the run to finish for its final model")
    return True


def ensemble_folder(out: str | os.PathLike | None, name: str | None, members: Sequence[Member], method: str,
                    combine: str = "vote", weights: str | None = None) -> tuple[str, Path]:
    """(name, folder) of an ensemble: --out (named by --name or its folder), else ENSEMBLES_DIR/--name, else
    ENSEMBLES_DIR/<method or profile>-<member+member...>[-w<w1_w2...>]: another method, set of members or typed
    weights never lands in the folder of an earlier ensemble (a long name is cut and keeps a digest of the whole).
    `weights`: the weights as typed (w1,w2,...), not auto."""
    if out is not None:
        return name or Path(out).name, Path(out)
    if name is None:
        name = ("profile" if combine == "profile" else method) + "-" + "+".join(m.name for m in members)
        if weights:     # typed weights: another folder than the fitted (or other typed) weights of the same runs
            name += "-w" + "_".join(weights.replace(" ", "").split(","))
        if len(name) > 96:
            import hashlib
            name = f"{name[:87]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    else:
        from imgcls.fsutil import check_folder_name
        check_folder_name(name, f"{ENSEMBLES_DIR}; or give --out FOLDER", "blend")
    return name, ENSEMBLES_DIR / name


def checkpoint_classes(path: Path) -> list[str]:
    from imgcls.train.checkpoint import read_meta
    return list(read_meta(path).classes)


def check_same_classes(members: Sequence[Member]) -> list[str]:
    """The members' common class list; a UserError names the first member whose classes differ, or that predicts
    another column (`train --target`: a mask run and an age_band run share the classes 0, 1, 2 and were averaged as
    one task), and the checkpoint file read on both sides (a k-fold run's fold_<k>/best.pt: it has no best.pt of its
    own)."""
    from imgcls.console import loading
    from imgcls.profile_names import PROFILE_HEADS
    with loading("torch"):          # the first step of predict and ensemble that needs it: seconds, silent
        from imgcls.train.checkpoint import read_meta
    ref, ref_name, ref_member, ref_target = None, None, None, None
    for m in members:
        for ck in m.checkpoints:
            meta = read_meta(ck)
            cls = list(meta.classes)
            if ref is None:
                ref, ref_name, ref_member, ref_target = cls, f"{m.name} ({ck})", m, meta.target
            elif meta.target != ref_target:
                fix = ("combine one run per attribute with --combine profile (the mask competition's classes)"
                       if {meta.target, ref_target} & set(PROFILE_HEADS) else "ensemble runs of one --target")
                raise UserError(f"members predict different columns: {m.name} ({ck}) predicts '{meta.target}' and "
                                f"{ref_name} '{ref_target}' (train --target); {fix}")
            elif cls != ref:
                diff = sorted(set(cls) ^ set(ref))
                what = f"classes differ: {shown(diff, 5)}" if diff else "the same classes in another order"
                who, fix = (("the folds of " + m.name, "retrain the run") if m is ref_member else
                            ("members", "ensemble runs trained on the same labels"))
                raise UserError(f"{who} do not share classes: {m.name} ({ck}) has {len(cls)} classes vs "
                                f"{len(ref)} in {ref_name} ({what}); {fix}")
    return ref or []


def write_spec(spec: EnsembleSpec, folder: str | os.PathLike, out_typed: bool = False,
               to: Path | None = None) -> Path:
    """folder/spec.yaml (members relative to it). `out_typed`: the folder is a typed --out, so another --out, not
    --name (which then names only the ensemble), keeps an earlier ensemble there. `to`: the file written instead
    (a set's temporary name in `folder`, write_ensemble_files, which removes an earlier build's SCORED_ROWS_FILES)."""
    from imgcls.fsutil import write_text
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve()
    rel = lambda p: Path(os.path.relpath(Path(p).resolve(), base)).as_posix()
    doc = {"kind": "imgcls-ensemble", "name": spec.name, "method": spec.method, "combine": spec.combine,
           **({"weight_metric": spec.weight_metric} if spec.weight_metric else {}), "classes": list(spec.classes),
           "members": [{"name": m.name, "run": rel(m.run), "weight": float(m.weight),
                        "checkpoints": [rel(c) for c in m.checkpoints]} for m in spec.members],
           "scores": spec.scores}
    path = folder / SPEC_NAME
    # said once every check has passed (a refused rebuild leaves the earlier one as it is); what a build stopped
    # among the renames of its set left is an earlier one too (its spec removed first: write_ensemble_files)
    if path.is_file() or (to is not None and interrupted_leftovers(folder / "ensemble")):
        from imgcls.console import info
        from imgcls.outputs import replacing_line
        info(replacing_line(folder, "an earlier ensemble", keep="another --out FOLDER" if out_typed else "--name NAME"))
        if to is None:
            # its scored rows and their scores go with it: a build whose members share no validation row writes
            # none, and `imgcls runs` scored the new ensemble on the earlier one's
            for f in SCORED_ROWS_FILES:
                (folder / f).unlink(missing_ok=True)
    write_text(to or path, yaml_dump(doc, sort_keys=False, allow_unicode=True))
    return path


# an ensemble's scored rows (the common validation rows) and their per-class scores (train's per_class.csv format)
SCORED_ROWS_FILES = (ENSEMBLE_OOF_CSV, PER_CLASS_CSV)


def scored_rows(keys, y, probs, classes: Sequence[str], scores: dict) -> pd.DataFrame:
    """The ensemble's scored rows (oof_predictions.csv: key, label, pred, p_<class>) of its probabilities `probs`
    on the common validation rows `keys` (labels `y`: class indices); their accuracy is recorded in `scores`
    (spec.yaml's ensemble_accuracy, beside ensemble_macro_f1 and common_val_images: what `imgcls runs` shows)."""
    from imgcls import metrics
    oof = pd.DataFrame(probs, columns=[f"p_{c}" for c in classes])
    oof.insert(0, "key", keys)
    oof.insert(1, "label", [classes[i] for i in y])
    oof.insert(2, "pred", [classes[i] for i in probs.argmax(1)])
    scores["ensemble_accuracy"] = metrics.scores(oof["label"].to_numpy(), oof["pred"].to_numpy(), classes)["accuracy"]
    return oof


def write_scored_rows(folder: Path, oof: pd.DataFrame, classes: Sequence[str]) -> None:
    """folder's oof_predictions.csv and per_class.csv (imgcls.metrics.per_class of its label / pred, as train
    writes a run's): `imgcls runs` shows them without re-scoring the rows."""
    from imgcls import metrics
    from imgcls.fsutil import write_table
    write_table(oof, folder / ENSEMBLE_OOF_CSV)
    write_table(metrics.per_class(oof["label"].to_numpy(), oof["pred"].to_numpy(), classes), folder / PER_CLASS_CSV)


def is_spec(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / SPEC_NAME).is_file()) or (p.is_file() and p.suffix in (".yaml", ".yml"))


def load_spec(path: str | os.PathLike) -> EnsembleSpec:
    """The ensemble of a spec file (or of the folder holding spec.yaml), every field checked; a member whose run
    (or fold) imgcls train is training now, or whose training stopped, is used with member_from_run's warning
    (warn_unfinished)."""
    p = Path(path)
    if p.is_dir():
        p = p / SPEC_NAME
    if not p.is_file():
        raise UserError(f"no ensemble spec at {p}; build one with {BUILD_ENSEMBLE}")
    doc = read_spec_doc(p)
    check_spec(doc, p)
    base = p.parent
    members = []
    for d in doc["members"]:
        weight = float(d.get("weight", 1.0))
        # the member's paths, stored relative to the spec's folder (write_spec), resolved from it: each said as the
        # path it names, not outputs/ensembles/soft-x/../../tune/s1/trial_0003
        ckpts = [(base / c).resolve() for c in d["checkpoints"]]
        run = (base / d["run"]).resolve()
        missing = [c for c in ckpts if not c.is_file()]
        if missing:
            from imgcls.train.rundir import deleted_by_tune
            why = deleted_by_tune(run)
            raise UserError(f"ensemble {p}: member {d['name']} checkpoint {missing[0]} does not exist"
                            + (f": {why}" if why else "; rebuild the ensemble or restore the run"))
        for c in ckpts:     # a member imgcls train is training again now, or stopped: said as `imgcls ensemble RUN` did
            warn_unfinished(run if len(ckpts) == 1 else c.parent, c)
        members.append(Member(str(d["name"]), run, ckpts, weight))
    return EnsembleSpec(doc.get("name", p.parent.name), doc.get("method", "soft"), members,
                        [str(c) for c in doc.get("classes", [])], p, doc.get("scores", {}),
                        doc.get("combine", "vote"), doc.get("weight_metric"))


def read_oof(run: Path, classes: Sequence[str]) -> pd.DataFrame:
    """A run's validation / out-of-fold predictions, indexed by image key (root/path), columns p_<class> + label."""
    f = run / VAL_PREDICTIONS if run.is_dir() else run.parent / VAL_PREDICTIONS
    if not f.is_file():
        from imgcls.train.rundir import written_file_fix
        # a fold given alone is finished by its k-fold set (warn_unfinished's)
        raise UserError(f"{f} does not exist: the run has no validation predictions to score or fit weights on "
                        f"(train writes them as it validates); {written_file_fix(fold_set(f.parent) or f.parent)}")
    from imgcls.train.rundir import read_validation
    df = read_validation(f, dtype={"path": str, "root": str, "label": str})
    cols = [f"p_{c}" for c in classes]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UserError(f"{f} lacks {missing[0]} (classes differ from the checkpoint's); re-run training")
    from imgcls.train.rundir import nan_probability_rows
    nan_rows = nan_probability_rows(df[cols])
    if nan_rows:        # argmax of NaN is the first class: its votes and its score would mean nothing
        raise UserError(f"{f} has no probabilities in {nan_rows} of its {len(df)} rows: the run's loss diverged "
                        f"(NaN); leave {f.parent} out of the ensemble, or train it again with a lower --lr")
    root = df["root"] if "root" in df.columns else ""
    df["key"] = [f"{r}/{p}" if r else p for r, p in zip(root, df["path"])] if "root" in df.columns else df["path"]
    df = df.drop_duplicates("key").set_index("key")
    return df[["label"] + cols]
