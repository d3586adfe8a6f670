"""`imgcls runs [DIR]`, `imgcls runs diff RUN_A RUN_B`, `imgcls runs report [DIR]`: compare experiments."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import Quiet, command
from imgcls.options import Given
from imgcls.runs import RunsConfig

EPILOG = """Examples:

  imgcls runs

  imgcls runs outputs/runs --sort seconds --filter model=resnet10t --filter "val_macro_f1>0.5"

  imgcls runs --csv runs.csv

  imgcls runs diff outputs/runs/A outputs/runs/B

  imgcls runs report outputs --out outputs/runs_report.html"""


@command("runs", epilog=EPILOG, options={"cfg": RunsConfig})
def runs(args: Annotated[Optional[list[str]], typer.Argument(
             help="[DIR] (default outputs): the leaderboard of every run under it;  diff RUN_A RUN_B: their option "
                  "differences and metric deltas;  report [DIR]: one self-contained HTML page comparing the runs.",
             show_default=False, metavar="[DIR] | diff RUN_A RUN_B | report [DIR]")] = None,
         quiet: Quiet = False, *, cfg: Given) -> None:
    """Compare experiments: every run, k-fold set, tune trial and ensemble under outputs/, one metric for all."""
    from imgcls import runs as R
    from imgcls.console import info
    from imgcls.errors import UserError
    o = RunsConfig(**cfg.values)
    from imgcls.options import check
    check(o)
    args = list(args or [])
    action = {"diff": "diff", "report": "report"}.get(args[0] if args else "", "table")
    # a flag of another action would do nothing: named in one line, as every command's needless option is
    acts = {"sort": ("table", "report"), "filter": ("table", "report"), "csv": ("table",), "json": ("table",),
            "out": ("report",)}
    said = {"table": "imgcls runs [DIR] (the leaderboard)", "report": "imgcls runs report", "diff": "imgcls runs diff"}
    for field in sorted(cfg.given):
        if action not in acts.get(field, (action,)):
            raise UserError(f"--{field} acts only with {' or '.join(said[a] for a in acts[field])}, not with "
                            f"{said[action]}; drop --{field}")
    # a path that cannot be written is one line before any run is read, not a traceback at the end
    from imgcls.fsutil import check_writable
    for flag, dest, example in (("--csv", o.csv, "runs.csv"), ("--json", o.json, "runs.json"),
                                ("--out", o.out, "runs_report.html")):
        if dest is not None and str(dest) != "-":
            check_writable(dest, "file", flag, example=example)
    if action == "diff":
        if len(args) != 3:
            raise UserError("runs diff takes two run folders: imgcls runs diff outputs/runs/A outputs/runs/B")
        R.print_diff(R.diff_runs(args[1], args[2]))
        return
    rest = args[1:] if action == "report" else args
    if len(rest) > 1:
        raise UserError(f"runs takes one folder (got {len(rest)}: {' '.join(rest)}); e.g. imgcls runs outputs")
    root = Path(rest[0]) if rest else Path("outputs")
    found = R.find_runs(root)
    if not found:
        raise UserError(f"no run under {root} (a folder with config.yaml from imgcls train, or an ensemble's "
                        f"spec.yaml); give the folder your runs are under")
    if action == "report":
        out = Path(o.out) if o.out else root / "runs_report.html"
        board = R.leaderboard(found, o.sort, o.filter)
        keep = set(board["name"])
        path = R.write_runs_report([r for r in found if r.name in keep], out, root)
        info(f"wrote {path} ({len(keep)} runs)" if not o.filter else
             f"wrote {path} ({len(keep)} of the {len(found)} runs under {root}, those --filter kept)")
        return
    board = R.leaderboard(found, o.sort, o.filter)
    to_stdout = False
    for fmt, dest in (("csv", o.csv), ("json", o.json)):
        if dest is not None:
            text = R.write_table(board, dest, fmt)
            if text is not None:
                sys.stdout.write(text)
                to_stdout = True
            else:
                info(f"wrote {dest} ({len(board)} rows)")
    if not to_stdout:
        R.print_leaderboard(board, root, of=len(found), filters=o.filter)
