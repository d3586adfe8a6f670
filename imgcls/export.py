"""`imgcls export RUN [--onnx]`: each checkpoint of a run -> an ONNX file whose output is the final-class
probabilities [N, C] (a multi-branch model's heads decoded inside the graph, e.g. to the 18 profile classes),
checked against torch on the same input with onnxruntime (max |difference| must stay under `atol`).

Next to the .onnx files, `export.json` records the input size, mean / std, resize mode, the letterbox (the colour
to pad each image to a square with first, where preprocess --size padded the training images), class names and the
parity figures, and `preprocessing` (imgcls.train.data.input_recipe): every step from the file to the input
tensor, the JPEG draft scale, EXIF, transparency's background and the resize arithmetic included, with the
decoding's version (imgcls.io.DECODE_VERSION), which is what a deployment needs to preprocess images like `imgcls
predict` does. Each file's record also names the decoding its model's training images had
(`trained_decode_version`, ModelMeta.decode_version): the recipe is the one predict follows, this imgcls's, and a
model trained on another decoding sees other pixels for some files there (export warns of it).
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from imgcls.console import info
from imgcls.errors import UserError
from imgcls.fsutil import check_file_name_encoding, check_writable, write_json
from imgcls.options import META_KEY, PATH, check, check_arguments, option, seed_option, shown, whole_argument
from imgcls.outputs import EXPORT_SUMMARY, output_set, refuse_other_output, refuse_users_files, replacing_line
from imgcls.run_names import fold_set


def _proba_module(model, meta):
    """The network followed by its decode: one output, final-class probabilities (torch imported lazily)."""
    import torch
    from imgcls.train.heads import decode_proba

    class ProbaNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            return decode_proba(self.net(x), meta)

    return ProbaNet().eval()


def _onnx_name(ck: Path) -> str:
    """The file a checkpoint is exported to in --out: best.onnx, fold_0_best.onnx for a k-fold set's fold's (a plain
    run named fold_0 exports best.onnx)."""
    return (f"{ck.parent.name}_{ck.stem}" if fold_set(ck.parent) is not None else ck.stem) + ".onnx"


def _earlier_onnx_names(out: Path) -> set[str] | None:
    """The ONNX files an earlier export wrote in `out`: those its export.json names (by name, in `out`); None
    without a readable one. Those a run does not write again are removed, not left beside its export.json."""
    import json
    try:
        files = json.loads((out / EXPORT_SUMMARY).read_text(encoding="utf-8")).get("files") or []
        names = {Path(str(r["onnx"])).name for r in files}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return {n for n in names if n.lower().endswith(".onnx")}


def _unproven_onnx_line(out: Path, names: list[str]) -> str | None:
    """Where `out` has no readable export.json, the line naming the .onnx files there this export does not write:
    an earlier export's, whose export.json went (or broke), stay beside this one's, which names only its own, and
    imgcls cannot prove it wrote them (a user's own are never removed). None where there are none. Temporary files
    (a dot first: atomic_path's) are not named."""
    try:
        there = sorted(p.name for p in out.iterdir() if p.suffix.lower() == ".onnx" and not p.name.startswith(".")
                       and p.name not in names and (p.is_file() or p.is_symlink()))
    except OSError:         # no folder yet
        return None
    if not there:
        return None
    one = len(there) == 1
    return (f"{out}: {shown(there)} {'is' if one else 'are'} not this export's and no readable {EXPORT_SUMMARY} "
            f"there says an earlier export wrote {'it' if one else 'them'}, so {'it stays' if one else 'they stay'} "
            f"beside this export's files; remove {'it' if one else 'them'} if {'it is' if one else 'they are'} an "
            f"earlier export's")


@dataclass
class ExportConfig:
    """The options of `imgcls export` besides the run and --out (export_onnx's keywords)."""
    opset: int = option(17, panel="ONNX", lo=7, hi=20,
                        help="ONNX opset (7-20: what torch's TorchScript exporter writes).")
    atol: float = option(1e-4, panel="ONNX", lo=0, lo_open=True,
                         help="Largest allowed |onnxruntime - torch| probability.")


def export_onnx(run: str | os.PathLike, out: str | os.PathLike | None = None, which: str = "best",
                opset: int = ExportConfig.opset, atol: float = ExportConfig.atol, batch: int = 4,
                seed: int = 0) -> dict:
    """Export every checkpoint of `run`; writes export.json and returns its dict (the input recipe, classes, and
    under "files" one record per ONNX file: its path and onnxruntime-vs-torch parity). Raises when parity fails,
    having written nothing."""
    check_file_name_encoding()     # as every command: a non-ASCII name misread or left out
    check_arguments("export_onnx", required=("run",), run=(run, PATH, "a path to a run folder or a checkpoint"),
                    out=(out, PATH, "a path to a folder"))
    opts = ExportConfig(opset=opset, atol=atol)
    check(opts)
    opset, atol = opts.opset, opts.atol     # as check stores them: plain numbers (np.int64 opset) in export.json
    from imgcls.train.rundir import check_which, diverged_fix, find_checkpoints
    check_which("export_onnx", which)
    # keywords no flag sets: batch=0, batch=-1 or seed=None was a traceback in numpy or torch once the model loaded
    batch = whole_argument("export_onnx", "batch", batch, lo=1)
    seeds = seed_option().metadata[META_KEY]    # every step's seed range (seed=-1, 2**64: torch's RuntimeError)
    seed = whole_argument("export_onnx", "seed", seed, lo=seeds.lo, hi=seeds.hi)
    run = Path(run)
    ckpts = find_checkpoints(run, which)
    default = (run if run.is_dir() else run.parent) / "onnx"
    out = Path(out) if out else default
    check_writable(out)
    refuse_other_output(out, "export", among=True, instead=f"e.g. the default {default}")
    # its files over a user's own of those names in a folder no export wrote (their best.onnx); an earlier export's
    # files this one does not write (best.onnx of RUN/best.pt, then RUN/last.pt) go: its own only (own_earlier_files)
    names = [_onnx_name(ck) for ck in ckpts]
    earlier = _earlier_onnx_names(out)
    stale = sorted((earlier or set()) - set(names))
    replaced = refuse_users_files(out, "export", [out / n for n in [*names, *stale, EXPORT_SUMMARY]],
                                  placing=out / "export")
    from imgcls.console import loading, status
    with loading("torch", "onnxruntime"):       # seconds before any line, on a first import
        import numpy as np
        import torch
        from imgcls.train.checkpoint import load_model
        from imgcls.train.data import input_recipe
        try:
            import onnx  # noqa: F401  (torch's exporter writes the file with it; imported here, not mid-export)
        except ImportError:
            raise UserError("onnx is not installed; pip install onnx (torch's ONNX exporter needs it)") from None
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("onnxruntime is not installed; pip install onnxruntime (needed for the parity check)"
                            ) from None
    from imgcls.model_meta import decode_differs
    from imgcls.train.checkpoint import read_meta
    # the recipe export.json writes is this imgcls's decoding: a model trained on another's sees other pixels there
    from imgcls.console import warn
    line = decode_differs({str(ck.relative_to(run) if run.is_dir() else ck.name): read_meta(ck) for ck in ckpts})
    if line:
        warn(line)
    unproven = _unproven_onnx_line(out, names) if earlier is None else None
    if unproven:        # an earlier export's files it cannot prove are one's: named, not removed
        warn(unproven)
    if replaced:        # RUN/onnx every run: say what goes
        info(replacing_line(out, "an earlier export"))
    # the ONNX files and export.json written as one set, renamed into place at its end (outputs.output_set): a run
    # stopped between them left a .onnx file without export.json, which its rerun refused as not export's. The
    # earlier export's files this one does not write go with the set (remove_earlier: regular files, never a link,
    # which an export does not write), named by the export.json there as the set is placed (an export that placed
    # its set meanwhile is the earlier one)
    with output_set(out, "export", earlier=lambda: (_earlier_onnx_names(out) or set()) - set(names)) as files:
        results, metas = [], []
        g = torch.Generator().manual_seed(seed)
        for ck in ckpts:
            # a model of seconds to build, export and run in ONNX Runtime: nothing on screen until its line
            with status(f"exporting {ck} to ONNX and checking it with ONNX Runtime"):
                lm = load_model(ck, "cpu", functools.partial(diverged_fix, ck))
                meta = lm.meta
                metas.append(meta)
                s = meta.img_size
                net = _proba_module(lm.model, meta)
                x = torch.randn(batch, 3, s, s, generator=g)
                path = out / _onnx_name(ck)
                staged = files.stage / path.name
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # the TorchScript exporter: the torch.export-based one needs onnxscript, not a dependency
                    torch.onnx.export(net, (x,), str(staged), dynamo=False, input_names=["input"],
                                      output_names=["probs"],
                                      dynamic_axes={"input": {0: "batch"}, "probs": {0: "batch"}},
                                      opset_version=opset)
                with torch.no_grad():
                    ref = net(x).numpy()
                sess = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
                got = sess.run(None, {"input": x.numpy()})[0]
                diff = float(np.abs(got - ref).max())
                agree = float((got.argmax(1) == ref.argmax(1)).mean())
                rec = {"onnx": os.path.abspath(path), "checkpoint": os.path.abspath(ck), "max_abs_diff": diff,
                       "argmax_agreement": agree,
                       "parity_ok": diff <= atol, "input": ["batch", 3, s, s], "output": ["batch", meta.n_classes],
                       # the decoding its training images had (ModelMeta.decode_version; 1 where unrecorded),
                       # beside the recipe's (preprocessing.decode.version: this imgcls's, what predict feeds it):
                       # where they differ, the model learnt from other pixels for some files (the warning above,
                       # kept in the file)
                       "trained_decode_version": meta.decode_version}
                results.append(rec)
            if not rec["parity_ok"]:    # a NaN |diff| (NaN probabilities) fails too: NaN > atol is False
                # before the set is placed: no failing file lies in --out with an export.json naming it. Said at the
                # first failure: the set is refused whatever the later checkpoints give (one model, one --opset),
                # and each costs seconds to build, export and check
                left = len(ckpts) - len(results)
                # torch's own probabilities NaN (finite weights that overflow, as a diverged run's): no --opset
                # helps; the rows that hold none, as rundir counts a diverged run's
                from imgcls.train.rundir import nan_rows
                own = int(nan_rows(ref).sum())
                fix = (f"{ck}'s own (torch) probabilities are NaN for {own} of the {batch} check inputs (its "
                       f"weights overflow: the run diverged), which no --opset changes; train it again with a lower "
                       f"--lr") if own else \
                    "try another --opset"
                raise UserError(f"ONNX parity check failed for {rec['onnx']}: max |diff| {diff:.2e} > {atol:g}"
                                + (f" (the other {left} checkpoint(s) not exported)" if left else "")
                                + f"; nothing was written to {out} (an earlier export there is left as it was); "
                                + fix)
            info(f"{path}: onnxruntime vs torch max |diff| = {diff:.2e} on {batch} inputs (ok, atol {atol:g})")
        meta = metas[0]             # the first checkpoint's, read above (not loaded again)
        # paths absolute (os.path.abspath: symlinks kept as named), as train's config.yaml records them: a relative
        # one meant the folder export ran from, nothing to a reader of OUT/export.json
        summary = {"run": os.path.abspath(run), "classes": list(meta.classes), "img_size": meta.img_size,
                   "mean": list(meta.mean), "std": list(meta.std), "resize_mode": meta.resize_mode,
                   "interpolation": meta.interpolation, "fill": list(meta.fill),
                   # before the resize: pad each image to a square with this RGB (preprocess --size letterboxed
                   # the training images; imgcls predict does so too); null: none
                   "letterbox": None if meta.letterbox is None else list(meta.letterbox),
                   # every step from the image file to the input tensor, as predict does it (decode, letterbox,
                   # resize, scaling, normalisation), with the values it uses
                   "preprocessing": input_recipe(meta),
                   "decode": meta.decode, "opset": opset,
                   "atol": atol,
                   "files": results}
        write_json(files.stage / EXPORT_SUMMARY, summary)
    return summary
