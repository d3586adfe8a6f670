"""imgcls.device.reuse_freed_memory (glibc mallopt: large blocks from the heap, freed memory kept) against glibc's
defaults (IMGCLS_REUSE_FREED_MEMORY=0), alternated in one run: a cold embedding pass (clean's), a train run and a
predict with TTA, each a fresh process; wall, user and kernel CPU seconds, peak RSS.

usage: python bench/cpu_allocator.py POOL TEST [--reps 2] [--epochs 1] [--work /tmp/cpu_allocator]
       POOL: a labelled image folder (train's input and the embedding pass's images); TEST: a labelled folder
       for predict --eval (the end-to-end benchmark's WORK/pool and WORK/test)
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

EMBED = ("import sys; from imgcls import manifest as mf; from imgcls.embed import embed_manifest; "
         "from imgcls.console import set_quiet; set_quiet(True); "
         "embed_manifest(mf.readable(mf.load(sys.argv[1], announce=False)).reset_index(drop=True), "
         "device='cpu', cache_dir=sys.argv[2])")


def timed(cmd: list, env: dict) -> dict:
    t = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)        # this process's own usage (and of the children it waited for)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(str(c) for c in cmd)}")
    return {"wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pool")
    ap.add_argument("test")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/cpu_allocator")
    a = ap.parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    py = sys.executable
    rows: dict[tuple[str, str], list[dict]] = {}
    print(f"load average at start {os.getloadavg()[0]:.2f}, torch's default threads, {os.cpu_count()} cores")
    for rep in range(a.reps):
        for mode in ("glibc default", "reuse freed memory"):
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "IMGCLS_REUSE_FREED_MEMORY": "0" if mode == "glibc default" else "1"}
            tag = f"{'d' if mode == 'glibc default' else 'r'}{rep}"
            steps = [
                ("embedding pass (lite0 160 px, batch 32, empty cache)", [py, "-c", EMBED, a.pool, work / f"cache_{tag}"]),
                (f"train (lite0, 96 px, {a.epochs} epoch(s), batch 32)",
                 [py, "-m", "imgcls", "train", a.pool, "--model", "tf_efficientnet_lite0", "--img-size", 96,
                  "--epochs", a.epochs, "--batch-size", 32, "--device", "cpu", "--seed", 0, "--quiet", "--out",
                  work / "runs", "--name", tag]),
                ("predict --tta flip --eval", [py, "-m", "imgcls", "predict", work / "runs" / tag, "--data", a.test,
                                               "--tta", "flip", "--eval", "--eval-split", "all", "--device", "cpu",
                                               "--out", work / f"pred_{tag}", "--quiet"])]
            for name, cmd in steps:
                rows.setdefault((name, mode), []).append(timed(cmd, env))
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print("| step | allocator | wall s | user s | kernel s | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (name, mode), rs in rows.items():
        mean = {k: sum(r[k] for r in rs) / len(rs) for k in rs[0]}
        print(f"| {name} | {mode} | {mean['wall']:.1f} | {mean['user']:.1f} | {mean['sys']:.1f} | {mean['rss_mib']:.0f} |")
    for name in dict.fromkeys(n for n, _ in rows):
        d = sum(r["wall"] for r in rows[(name, "glibc default")])
        r = sum(r["wall"] for r in rows[(name, "reuse freed memory")])
        print(f"{name}: reuse / default wall = {r / d:.2f}")


if __name__ == "__main__":
    main()
