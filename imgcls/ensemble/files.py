"""An ensemble build's files written as one set: spec.yaml, scores.csv, its scored rows and their per-class scores,
report.html and the confusion PNGs (build_ensemble's and --combine profile's). Apart from imgcls.ensemble.spec,
which predict and `imgcls runs` import to read an ensemble: the report's writer (imgcls.inference_report) imports
imgcls.runs, which reads specs."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from imgcls.ensemble.spec import SCORED_ROWS_FILES, EnsembleSpec, write_scored_rows, write_spec
from imgcls.outputs import ENSEMBLE_SCORES_CSV, SPEC_NAME


def write_ensemble_files(spec: EnsembleSpec, folder: Path, out_typed: bool, table: pd.DataFrame,
                         oof: pd.DataFrame | None, member_probs: Sequence = (), member_metas: Sequence = (),
                         plots: bool = True) -> Path:
    """An ensemble's spec.yaml, scores.csv (`table`), oof_predictions.csv (`oof`) and its per_class.csv
    (write_scored_rows; `oof` None: neither, and an earlier build's go), its report.html and confusion PNGs
    (inference_report.write_ensemble_report of `member_probs` and `member_metas`; no PNGs without `oof` nor with
    `plots` False, --no-plots: an earlier build's go) in `folder`, written as one set (outputs.output_set): a build
    stopped between them left a new spec beside the earlier build's scored rows (removed before, or the earlier
    ones: what predict --eval leaves out), or its report and figures, or on a first build a spec without them.
    Returns spec.yaml's path."""
    from imgcls.figure_files import confusion_png_names
    from imgcls.fsutil import write_table
    from imgcls.inference_report import write_ensemble_report
    from imgcls.outputs import output_set, placing_journal
    # what a kill -9 of an earlier build left: the temporary files of these names (only ours: the folder may hold
    # others' files), swept while this build holds the folder
    temps = [SPEC_NAME, ENSEMBLE_SCORES_CSV, *SCORED_ROWS_FILES, placing_journal(folder / "ensemble").name]
    # spec.yaml, what predict and `imgcls runs` read the ensemble by, is the set's record: the earlier one goes
    # before the first rename, this one comes after the last, so a spec never lies beside another build's files
    with output_set(folder, "ensemble", earlier=[*SCORED_ROWS_FILES, *confusion_png_names()], temps=temps,
                    record=SPEC_NAME) as files:
        path = write_spec(spec, folder, out_typed, to=files.beside(SPEC_NAME))
        write_table(table, files.stage / ENSEMBLE_SCORES_CSV)
        if oof is not None:
            write_scored_rows(files.stage, oof, spec.classes)
        write_ensemble_report(files.stage, spec, table, oof, member_probs, member_metas, plots)
    return path
