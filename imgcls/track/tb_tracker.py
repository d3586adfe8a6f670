"""--tracker tensorboard: event files in the run folder (torch.utils.tensorboard)."""
from __future__ import annotations

from pathlib import Path

from imgcls.figure_files import confusion_png_names
from imgcls.run_names import VAL_PREDICTIONS
from imgcls.track.common import OOF_METRICS, epoch_scalars, oof_scalars, text_params
from imgcls.train.callbacks import Callback


# the metrics each run's hparams declare: TensorBoard's HParams tab takes its columns from one run's declaration
# (the first it reads), so a run, a fold and a k-fold set all declare every one (each a blank cell where it has none)
HPARAM_METRICS = ("hparam/best_val_macro_f1", *OOF_METRICS)


def write_hparams(writer, config: dict, metrics: dict[str, float], step: int) -> None:
    """A row of TensorBoard's HParams tab: the options `config` and the `metrics` (scalars at `step`), written into
    `writer`'s own event file (SummaryWriter.add_hparams would open a sub-folder run)."""
    from torch.utils.tensorboard.summary import hparams
    # bools as "true"/"false" (text_params): hparams() tests for a number before a bool, so True would show as 1.0
    hp = {k: v for k, v in text_params(config).items() if isinstance(v, (int, float, str))}
    exp, ssi, sei = hparams(hp, dict.fromkeys(HPARAM_METRICS, 0.0))     # only the metrics' names are written
    fw = writer._get_file_writer()
    for s in (exp, ssi, sei):
        fw.add_summary(s)
    for k, v in metrics.items():
        writer.add_scalar(k, v, step)


class TensorBoardTracker(Callback):
    def __init__(self):
        self.writer = None
        self.config: dict = {}

    def on_run_start(self, info):
        from torch.utils.tensorboard import SummaryWriter
        # --resume: the stopped session's events past last.pt (the updates of an epoch it did not finish) are dropped
        # when TensorBoard reads the folder, so the steps this session trains again are not drawn twice; its epoch
        # scalars and images all sit at steps below (an epoch's are written after its checkpoint)
        start = int(info.get("start_step") or 0)
        self.writer = SummaryWriter(log_dir=str(info["run_dir"]), purge_step=start + 1 if start else None)
        self.config = info["config"]

    def on_step_end(self, step, logs):
        self.writer.add_scalar("step/loss", logs["loss"], step)
        self.writer.add_scalar("step/lr", logs["lr"], step)

    def on_epoch_end(self, epoch, logs):
        for k, v in epoch_scalars(logs).items():
            self.writer.add_scalar(k, v, epoch)
        self.writer.flush()

    def on_run_end(self, summary):
        from imgcls.track.images import figure_array, png_array, worst_predictions_figure
        w, run_dir = self.writer, summary["run_dir"]
        for png in confusion_png_names():
            arr = png_array(run_dir / png)
            if arr is not None:      # tagged by the file's name without .png, as ever (users' dashboards)
                w.add_image(Path(png).stem, arr, summary["best_epoch"], dataformats="HWC")
        fig = worst_predictions_figure(run_dir / VAL_PREDICTIONS, max_pixels=self.config.get("max_pixels"))
        if fig is not None:         # drawn as the run's PNGs are (figure_array), not by add_figure
            w.add_image("val/worst_predictions", figure_array(fig), summary["best_epoch"], dataformats="HWC")
        write_hparams(w, self.config, {"hparam/best_val_macro_f1": float(summary["best_macro_f1"])},
                      summary["best_epoch"])
        w.close()

    def on_train_end(self, summary):
        from imgcls.console import info, sh
        # a k-fold set's out-of-fold score, as MLflow logs it on the set's run: in the set's own log dir (the folds
        # write theirs below it), so `tensorboard --logdir outputs/runs` shows it as the set's run
        scalars = oof_scalars(summary)
        info(f"tensorboard: event files in each run's folder; to compare the runs: tensorboard --logdir "
             f"{sh(Path(summary['run_dir']).parent)}")
        if not scalars:
            return
        from torch.utils.tensorboard import SummaryWriter
        with SummaryWriter(log_dir=str(summary["run_dir"])) as w:       # the set's row in the HParams tab
            write_hparams(w, summary["config"], scalars, 0)     # the set's record: a resumed set trains no fold

    def on_run_abort(self, error):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
