"""Benchmark `imgcls preprocess`: images/s for --face-crop, --remove-bg and both, on real photos.

    .venv/bin/python bench/preprocess_speed.py [--data /work/imgdata/out] [--workers 1 2] [--size 224]

Data (../shared/data's recipe): `faces/photos` (16 face photos, 112 px to 2333 px, some with several or partial
faces) and `photos` (72 photos <= 512 px: faces, masks, landscapes, objects). Each (mode, workers) runs
`run_preprocess` into a fresh folder; `images/s` is the processing loop only (what `preprocess.json` records:
models already built, scan done), `wall s` is the whole call (scan, model build, worker start-up, report); `cpu s/image` (one worker only) is the
CPU time of the loop per image, which the other users of a shared machine do not inflate.
The models are the real ones: rembg u2netp (ONNX, CPU) and deepface's opencv (Haar) detector. Prints a Markdown
table and the load average (the machine is shared: compare rows of one run, not runs of different days).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from imgcls.console import set_quiet  # noqa: E402
from imgcls.preprocess import PreprocessConfig, run_preprocess  # noqa: E402

MODES = {"resize only": {}, "face-crop": {"face_crop": True}, "remove-bg": {"remove_bg": True},
         "face-crop + remove-bg": {"face_crop": True, "remove_bg": True}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/imgdata/out")
    ap.add_argument("--sets", nargs="+", default=["faces/photos", "photos"])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    set_quiet(True)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="imgcls-bench-pre-"))
    try:
        for ds in args.sets:
            src = Path(args.data) / ds
            for mode in args.modes:
                for w in args.workers:
                    out = tmp / f"{ds.replace('/', '_')}_{mode.replace(' ', '')}_{w}"
                    cfg = PreprocessConfig(size=args.size, **MODES[mode])
                    t = time.perf_counter()
                    res = run_preprocess(src, out, cfg, workers=w, report=False)
                    wall = time.perf_counter() - t
                    s = json.loads((out / "preprocess.json").read_text())
                    row = {"data": ds, "mode": mode, "workers": w, "images": s["processed"],
                           "images/s": s["images_per_second"], "wall s": round(wall, 1),
                           "cpu s/image": s.get("cpu_seconds_per_image") or "",
                           "faces found": int((res["face_found"] == True).sum()) if cfg.face_crop else "",  # noqa: E712
                           "failed": s["failed"], "load avg": round(os.getloadavg()[0], 1)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cols = list(rows[0])
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    print(f"\ncpus: {os.cpu_count()}, size {args.size}, python {sys.version.split()[0]}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
