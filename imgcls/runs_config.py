"""`imgcls runs`' options (RunsConfig) and the leaderboard's columns, which --sort chooses among: only the standard
library and imgcls.options, so `imgcls runs --help` imports no numpy / pandas; imgcls.runs reads the runs (and
re-exports these)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from imgcls.errors import UserError
from imgcls.options import not_empty_path, option, python_too

DEFAULT_ROOT = "outputs"        # the folder `imgcls runs` reads without one given
RUNS_TABLE = python_too("`imgcls runs`", "imgcls.runs.run_runs()")     # the leaderboard a fix points to, both callers


_OPERATOR = re.compile(r"!=|>=|<=|=|>|<|~")     # at one place, an alternation tries the two-character first


def parse_filter(expr: str) -> tuple[str, str, str]:
    """One --filter expression as (column, operator, value): 'model=resnet10t' -> ('model', '=', 'resnet10t'); one
    line naming it where it has no operator ('', 'model'). It splits at the operator leftmost in the text, so a value
    may hold one ('name~a=b' is name contains 'a=b'); at one place the two-character operator wins ('lr>=0.1')."""
    found = _OPERATOR.search(expr)
    if found:
        return expr[:found.start()].strip(), found.group(), expr[found.end():].strip()
    raise UserError(f"--filter '{expr}': write COLUMN=VALUE (also !=, >, <, >=, <=, ~ for 'contains'), "
                    f"e.g. --filter model=resnet10t")


def _check_filters(exprs) -> None:
    """--filter's validator (options.check, before any run is read): each expression parses (parse_filter)."""
    for expr in exprs:
        parse_filter(expr)


COLUMNS = ["name", "kind", "task", "state", "progress", "model", "img_size", "epochs", "best_epoch", "val_macro_f1", "val_acc", "n_val",
           "scored_on", "seconds", "changed"]


@dataclass
class RunsConfig:
    """`imgcls runs`' options (the CLI's flags are built from these declarations)."""
    sort: str = option("val_macro_f1", panel="Table", choices=COLUMNS,
                       help="Column to sort by (scores: best first, each task's runs ranked apart).")
    filter: list[str] = option(factory=list, panel="Table", cli_type=Optional[list[str]],
                               from_cli=lambda v: list(v or []), to_cli=lambda v: list(v) or None, none="every run",
                               validator=_check_filters,
                               help="Keep rows where COLUMN=VALUE (also !=, >, <, >=, <=, ~ for 'contains'); a "
                                    "config option works too (loss=focal). A row without the value (an ensemble has "
                                    "no lr) matches no --filter, != included. Repeatable: all must hold.")
    csv: str | None = option(None, panel="Output", none="no file", validator=not_empty_path("--csv"),
                             help="Also write the table as CSV to this path (- for stdout instead of the table).")
    json: str | None = option(None, panel="Output", none="no file", validator=not_empty_path("--json"),
                              help="Also write the table as JSON to this path (- for stdout instead of the table).")
    out: str | None = option(None, panel="Output", none="DIR/runs_report.html", validator=not_empty_path("--out"),
                             help="`runs report`: the HTML file to write.")

    def interruption_leaves(self, action: str, paths) -> str:
        """What a Ctrl-C in `imgcls runs ACTION PATHS` leaves (console.interruption_leaves): the file an action
        writes (its report, --csv / --json FILE) is written whole at its end; a table or diff printed writes
        nothing."""
        from pathlib import Path

        from imgcls.console import WRITES_NOTHING, nothing_written
        if action == "report":
            files = [self.out or Path(paths[0] if paths else DEFAULT_ROOT) / "runs_report.html"]
        else:
            files = [d for d in (self.csv, self.json) if action == "table" and d is not None and str(d) != "-"]
        return nothing_written(" or ".join(map(str, files))) if files else WRITES_NOTHING
