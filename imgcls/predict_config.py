"""`imgcls predict`'s options (PredictConfig): only the standard library and light imgcls modules, so
`imgcls predict --help` imports no numpy / pandas / torch; imgcls.predict runs the step (and re-exports them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from imgcls.device import device_option
from imgcls.errors import UserError
from imgcls.image_options import DEFAULT_MAX_PIXELS, max_pixels_option
from imgcls.options import When, check, keyword_note, option, specs
from imgcls.parallel import default_workers
from imgcls.run_names import RUN_CONFIG
from imgcls.tta import MERGES, parse_tta

EVAL_SPLITS = ("all", "val", "test")
# --format: name -> (id column, label column, value: 'name' (class name) or 'index' (class id))
FORMATS = {"id,label": ("id", "label", "name"),
           "mask": ("ImageID", "ans", "index"), "imageid,ans": ("ImageID", "ans", "index"),
           "dacon": ("id", "artist", "name"), "id,artist": ("id", "artist", "name")}
DEFAULT_FORMAT = "id,label"      # the submission's columns without a --format or a sample submission


def format_key(fmt: str) -> str | None:
    """The FORMATS key a --format names (as imgcls.submission.STEM_IDS spells it too), None for a custom
    ID_COL,LABEL_COL: a name without a comma is matched whole, case and spaces aside ('Mask', 'da con'); one with a
    comma by its two column names, each stripped of the spaces around it and matched case aside, inner spaces kept:
    'ImageID, ans' is mask, 'Image ID, ans' is the user's own columns (they were 'imageid,ans', the built-in, once
    every space was dropped)."""
    if "," not in fmt:
        key = fmt.strip().lower().replace(" ", "")
    else:
        key = ",".join(part.strip().lower() for part in fmt.split(","))
    return key if key in FORMATS else None


def resolve_format(fmt: str) -> tuple[str, str, str]:
    key = format_key(fmt)
    if key is not None:
        return FORMATS[key]
    parts = [part.strip() for part in fmt.split(",")]    # '이미지 ID, 정답' -> '이미지 ID', '정답'
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], "name"
    raise UserError(f"unknown --format '{fmt}'; use id,label, mask (ImageID,ans with class ids), "
                    f"dacon (id,artist), or ID_COL,LABEL_COL" + keyword_of("fmt"))


def keyword_of(*names: str) -> str:
    """' (Python: evaluate=)': what a predict line naming these options by their flags ends with, the keywords of
    those whose flag is another word (--eval: evaluate, --format: fmt; options.keyword_note), '' for the others."""
    table = specs(PredictConfig)
    return keyword_note(*((name, table[name][1]) for name in names))


PREDICTION, SUBMISSION, EVALUATION, RUNTIME = "Prediction", "Submission", "Evaluation", "Runtime"
# what --tta-merge acts through: views to merge (a --tta of one view has nothing to merge)
MERGED = When(lambda tta, _cfg: parse_tta(tta).n_views > 1, "of more than one view (e.g. flip; one view has "
                                                             "nothing to merge)")
PROBS_FORMATS = ("parquet", "csv")


@dataclass
class PredictConfig:
    """The options of `imgcls predict` besides its paths and input layout; the field names are run_predict's
    keywords (imgcls.options: default, choices, range, help, panel)."""
    tta: str = option("none", panel=PREDICTION, off=("none", "no TTA"),
                      help="Test-time augmentation: none, flip, crops (five), ten, scales=0.9,1.0,1.1, joined by '+'; "
                           "a bare --tta means flip.")
    tta_merge: str = option("mean", panel=PREDICTION, choices=MERGES, needs=(("tta", MERGED),),
                            help="mean (of probabilities) | logits (mean, then softmax).")
    fmt: str | None = option(None, panel=SUBMISSION, flags=("--format",),
                             none=f"{DEFAULT_FORMAT}; with --sample-submission: the template's columns",
                             help="Submission columns: id,label | mask (ImageID,ans; class ids) | dacon (id,artist) "
                                  "| ID_COL,LABEL_COL.")
    sample_submission: str | None = option(None, panel=SUBMISSION, cli_type=Optional[Path], from_cli=str,
                                           help="The competition's sample submission: filled in its row order; "
                                                "missing/extra ids fail.")
    probs_format: str = option("parquet", panel=SUBMISSION, choices=PROBS_FORMATS,
                               help="Per-image probabilities file.")
    evaluate: bool = option(False, panel=EVALUATION, flags=("--eval",),
                            help="On labelled data: macro-F1 / accuracy with and without TTA.")
    eval_split: str | None = option(None, panel=EVALUATION, choices=EVAL_SPLITS, needs=("evaluate",),
                                    none="val when the data has a split column with val rows, else all",
                                    help="Rows --eval scores.")
    plots: bool = option(True, panel=SUBMISSION, flags=("--plots/--no-plots",),
                         help="Draw report.html's class-distribution figure and, with --eval, the confusion-matrix "
                              "PNGs; --no-plots: their tables alone (a script's loop of predictions).")
    batch_size: int = option(32, panel=RUNTIME, lo=1, help="Images per batch (each with all its TTA views).")
    amp: bool | None = option(None, panel=RUNTIME, flags=("--amp/--no-amp",), none="on for CUDA, off on CPU",
                              help="Mixed precision (float16) on CUDA; the CPU runs float32.")
    device: str = device_option(RUNTIME)
    workers: int = option(default_workers(), panel=RUNTIME, lo=0, off=(0, "decoding in the main process"),
                          help="DataLoader worker processes (decoding and TTA views; 0: in the main process).")
    max_pixels: int | None = max_pixels_option(
        None, none=f"the run's train --max-pixels ({RUN_CONFIG}), else {DEFAULT_MAX_PIXELS}",
        help="not given: the limit the run trained with (an ensemble: the highest of its members'), so test images "
             "of the kind it trained on are read.")

    def validate(self) -> None:
        """Choices, ranges and the options that need another (check: --eval-split needs --eval, --tta-merge more
        than one --tta view), the --tta grammar, the --format spelling; before the model is loaded."""
        check(self)
        parse_tta(self.tta)
        if not self.sample_submission:
            resolve_format(self.fmt or DEFAULT_FORMAT)
