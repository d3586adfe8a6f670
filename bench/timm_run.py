"""Running timm's REAL train.py (and inference.py) as a user runs them, for the benches that compare against it
(bench/e2e_vs_timm.py, bench/train_throughput.py): one owner of the command line, the offline starting weights and
the subprocess measurement (wall seconds, peak RSS, timestamped output lines).

timm's scripts live in a pytorch-image-models checkout (--timm-repo DIR holding train.py and inference.py; they are
not in the timm wheel and are never committed here): `git show HEAD:train.py > DIR/train.py`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    """One finished command: wall seconds, peak RSS (bytes; the largest single process of its tree that was
    waited for: os.wait4's ru_maxrss), and (seconds since start, line) for every output line."""
    seconds: float
    peak_rss: int
    lines: list = field(default_factory=list)


def run(cmd: list, log: Path, env: dict | None = None, quiet: bool = False) -> Proc:
    """Run a command, its output to `log` (each line timestamped in Proc.lines); fails loudly with the log's
    tail. Line timestamps need unbuffered output: PYTHONUNBUFFERED=1 is set for the child."""
    cmd = [str(c) for c in cmd]
    if not quiet:
        print("$", " ".join(cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
    lines = []
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                             errors="replace", bufsize=1)
        for line in p.stdout:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))
            fh.write(line)
        _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SystemExit(f"failed ({p.returncode}) after {secs:.0f}s: {' '.join(cmd)}\n{tail}")
    return Proc(secs, int(usage.ru_maxrss) * 1024, lines)


def timm_weights(work: Path, model: str) -> Path | None:
    """The model's offline ImageNet weights (imgcls's package-shipped file, or the local timm / Hugging Face cache)
    as a state dict in timm's names, written once into `work`; None when no offline source has them."""
    import torch

    from imgcls.errors import MissingWeightsError
    from imgcls.weights import create_model
    path = work / f"{model}_timm.pth"
    if not path.is_file():
        try:
            m = create_model(model, pretrained=True)
        except (MissingWeightsError, RuntimeError, OSError):
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(m.state_dict(), path)
    return path


def train_py_cmd(timm_repo: Path, data_dir: Path, model: str, *, num_classes: int, img_size: int, epochs: int,
                 batch_size: int, lr: float, device: str, workers: int, out: Path, experiment: str,
                 weights: Path | None, seed: int = 0, weight_decay: float | None = None,
                 class_map: Path | None = None, amp: bool = False, channels_last: bool = False,
                 extra: tuple = ()) -> list:
    """timm's train.py on an ImageFolder with train/ and val/: AdamW, cosine, no warm-up (imgcls's defaults), its
    default train transforms; `weights` (timm_weights) through --pretrained --pretrained-path, else random init."""
    cmd = [sys.executable, timm_repo / "train.py", "--data-dir", data_dir, "--train-split", "train",
           "--val-split", "val", "--model", model, "--num-classes", num_classes, "--img-size", img_size,
           "--epochs", epochs, "--batch-size", batch_size, "--opt", "adamw", "--lr", lr, "--sched", "cosine",
           "--warmup-epochs", 0, "--seed", seed, "--device", device, "--workers", workers, "--output", out,
           "--experiment", experiment, "--checkpoint-hist", 1, "--log-interval", 1000]
    if device == "cpu" or not str(device).startswith("cuda"):
        cmd.append("--no-prefetcher")       # its prefetcher is CUDA streams
    if weights is not None:
        cmd += ["--pretrained", "--pretrained-path", weights]
    if weight_decay is not None:
        cmd += ["--weight-decay", weight_decay]
    if class_map is not None:
        cmd += ["--class-map", class_map]
    if amp:
        cmd.append("--amp")
    if channels_last:
        cmd.append("--channels-last")
    return cmd + list(extra)


def train_py_epoch_seconds(lines: list, epochs: int) -> list[float]:
    """Per-epoch wall seconds of a train.py run from its timestamped output (Proc.lines): epoch e ends at its last
    validation line ('Test: [ K/K]'); the first starts at 'Scheduled epochs' (after model and loader setup).
    Checkpoint saving falls inside the next epoch."""
    import re
    start = next((t for t, ln in lines if ln.startswith("Scheduled epochs")), None)
    ends = [t for t, ln in lines if (m := re.match(r"Test: \[\s*(\d+)/(\d+)\]", ln)) and m.group(1) == m.group(2)]
    if start is None or len(ends) != epochs:
        return []
    marks = [start] + ends
    return [b - a for a, b in zip(marks, marks[1:])]
