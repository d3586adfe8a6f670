"""Benchmark and check the eda scan (imgcls.manifest.scan_images / imgcls.io.probe).

usage: .venv/bin/python bench/eda_scan.py [--data /work/imgdata/out] [--workers 1,2] [--repeat 1]

1. speed + peak RSS: scans DATA/openclipart_dirty in a child process run under `/usr/bin/time -v`
   (images/s over the scan alone; peak RSS = "Maximum resident set size", the largest single process: with
   --workers N the N worker processes each have their own, printed as well), and the whole `imgcls eda` run;
2. memory vs image size: the same scan on a folder of a few huge JPEG / PNG images and on a folder of small ones;
3. correctness: `imgcls eda` class counts against a plain count of files per folder, and its exact-duplicate
   groups against an independent sha256 count (hashlib over every file).
Prints a Markdown table for docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
IMGCLS = str(Path(PY).with_name("imgcls"))

# run in a child: scan only, print JSON (time measured around scan_images, not imports / folder listing)
SCAN_CHILD = r"""
import json, sys, time, resource
from imgcls import manifest as mf
from imgcls.console import set_quiet
set_quiet(True)
df = mf.load(sys.argv[1], scan=False, announce=False)
t = time.perf_counter()
df = mf.scan_images(df, workers=int(sys.argv[2]))
dt = time.perf_counter() - t
print(json.dumps({"n": len(df), "errors": int((df["error"] != "").sum()), "seconds": dt,
                  "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def timed(cmd: list[str]) -> tuple[str, dict]:
    """Run under /usr/bin/time -v; return stdout and {'maxrss_mib', 'wall_s'}."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"})
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = (float(x) if x else 0.0 for x in wall.groups())
    return r.stdout, {"maxrss_mib": rss / 1024, "wall_s": h * 3600 + m * 60 + s}


def scan(folder: Path, workers: int) -> dict:
    out, t = timed([PY, "-c", SCAN_CHILD, str(folder), str(workers)])
    res = json.loads(out.strip().splitlines()[-1])
    res.update(t, rate=res["n"] / res["seconds"], worker_maxrss_mib=res["children_maxrss_kb"] / 1024)
    return res


def make_size_folders(base: Path) -> tuple[Path, Path]:
    """A few huge images (JPEG 8000x6000, PNG 6000x6000) and the same number of small ones."""
    import numpy as np
    from PIL import Image
    huge, small = base / "huge", base / "small"
    for d in (huge, small):
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        for (w, h), ext in (((8000, 6000), "jpg"), ((6000, 6000), "png")):
            arr = np.empty((h, w, 3), np.uint8)
            arr[..., 0] = (np.arange(w) * 255 // w).astype(np.uint8)[None, :]
            arr[..., 1] = (np.arange(h) * 255 // h).astype(np.uint8)[:, None]
            arr[..., 2] = 60 * i
            arr[::97, :] = rng.integers(0, 256, (len(range(0, h, 97)), w, 3), dtype=np.uint8)   # some texture
            Image.fromarray(arr).save(huge / f"{i}.{ext}", **({"quality": 90} if ext == "jpg" else {"compress_level": 1}))
            Image.fromarray(arr[::50, ::50].copy()).save(small / f"{i}.{ext}")
    return huge, small


def independent_counts(root: Path) -> tuple[dict, int, int]:
    """Files per class folder, and sha256 groups with more than one file (plain os / hashlib)."""
    classes, digests = {}, collections.Counter()
    for c in sorted(os.listdir(root)):
        files = [f for f in os.listdir(root / c) if (root / c / f).is_file()]
        classes[c] = len(files)
        for f in files:
            digests[hashlib.sha256((root / c / f).read_bytes()).hexdigest()] += 1
    groups = [n for n in digests.values() if n > 1]
    return classes, len(groups), sum(n - 1 for n in groups)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/imgdata/out"))
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=1, help="runs per setting (the best is reported)")
    ap.add_argument("--skip-size", action="store_true")
    a = ap.parse_args()
    dirty = a.data / "openclipart_dirty"
    workers = [int(w) for w in a.workers.split(",")]
    rows = []
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}", flush=True)

    for w in workers:
        best = max((scan(dirty, w) for _ in range(a.repeat)), key=lambda r: r["rate"])
        rows.append(("openclipart_dirty", f"scan, --workers {w}", best["n"], best["seconds"], best["rate"],
                     best["maxrss_mib"], best["worker_maxrss_mib"] if w > 1 else None))
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for w in workers:
            _, t = timed([IMGCLS, "eda", str(dirty), "--out", str(tmp / f"eda{w}"), "--workers", str(w), "-q"])
            n = json.loads((tmp / f"eda{w}" / "summary.json").read_text())["n_images"]
            rows.append(("openclipart_dirty", f"`imgcls eda` end to end, --workers {w}", n, t["wall_s"],
                         n / t["wall_s"], t["maxrss_mib"], None))
            print(rows[-1], flush=True)
        summary = json.loads((tmp / f"eda{workers[0]}" / "summary.json").read_text())
        if not a.skip_size:
            huge, small = make_size_folders(tmp / "sizes")
            for name, folder in (("3 JPEG 8000x6000 + 3 PNG 6000x6000", huge), ("same 6 at 1/50 size", small)):
                r = scan(folder, 1)
                mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
                rows.append((f"{name} ({mb:.0f} MB)", "scan, --workers 1", r["n"], r["seconds"], r["rate"],
                             r["maxrss_mib"], None))
                print(rows[-1], flush=True)

    classes, n_groups, n_extra = independent_counts(dirty)
    print("\n| data | what | images | time (s) | images/s | peak RSS (MiB) | per worker (MiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for d, what, n, s, rate, rss, wrss in rows:
        print(f"| {d} | {what} | {n} | {s:.2f} | {rate:.0f} | {rss:.0f} | {'' if wrss is None else f'{wrss:.0f}'} |")
    ok_classes = summary["classes"] == classes
    ok_dups = summary["exact_duplicate_groups"] == n_groups and summary["exact_duplicate_images"] == n_extra
    print(f"\nclass counts: imgcls eda {'==' if ok_classes else '!='} files per folder "
          f"({len(classes)} classes, {sum(classes.values())} files)")
    print(f"exact duplicates: imgcls eda {summary['exact_duplicate_groups']} groups / "
          f"{summary['exact_duplicate_images']} extra copies; independent sha256 count {n_groups} / {n_extra} "
          f"({'match' if ok_dups else 'MISMATCH'}); unreadable: {summary['n_errors']}")
    if not (ok_classes and ok_dups):
        sys.exit(1)


if __name__ == "__main__":
    main()
