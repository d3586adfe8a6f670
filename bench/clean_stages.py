"""Where a first `imgcls clean` spends its wall time: runs the CLI in this process with a timer around each stage
(the manifest load and scan, the one-decode thumbnail + photo-feature pass, the embedding passes, the near-duplicate
pair scoring, the duplicate marking, the report) and prints each stage's start and seconds. Give IMGCLS_CACHE an
empty folder for a cold (first-run) pass.

usage: IMGCLS_CACHE=/tmp/cc python bench/clean_stages.py DATA --out OUT [clean's options ...]
e.g.   IMGCLS_CACHE=$(mktemp -d) python bench/clean_stages.py /work/e2e/pool --out /tmp/co --device cpu --quiet
"""
from __future__ import annotations

import functools
import sys
import time

T0 = time.perf_counter()


def main() -> None:
    import imgcls.clean.report as report
    import imgcls.clean.run as run
    import imgcls.embed as embed
    import imgcls.manifest as mf
    from imgcls.links import NearDuplicates
    marks: list[tuple[str, float, float]] = []

    def timed(owner, name: str, label: str) -> None:
        f = getattr(owner, name)

        @functools.wraps(f)
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                marks.append((label, t - T0, time.perf_counter() - t))
        setattr(owner, name, wrapper)

    timed(mf, "load", "manifest load")
    timed(mf, "scan_images", "scan")
    timed(run, "thumbnails_and_features", "thumbnails + photo features")
    timed(embed, "_embed", "embedding pass")
    timed(NearDuplicates, "scored_pairs", "near-duplicate pairs")
    timed(run, "mark_duplicates", "mark duplicates")
    timed(report, "write_clean_report", "report.html")
    from imgcls.cli import main as cli
    sys.argv = ["imgcls", "clean", *sys.argv[1:]]
    try:
        cli()
    except SystemExit as e:
        if e.code:
            raise
    finally:
        for label, start, took in marks:
            print(f"{label:30s} start {start:6.2f} s  took {took:6.2f} s", file=sys.stderr)
        print(f"{'total (process start to end)':30s} {time.perf_counter() - T0:6.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
