"""Shared HTML-report and plot helpers: one place for page layout, tables, thumbnails and figure saving."""
from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from imgcls.fsutil import atomic_path, write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;
     padding:0 1rem}
h1{font-size:1.6rem} h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem} td,th{border:1px solid #ddd;padding:.25rem .5rem;
     text-align:left;vertical-align:top} th{background:#f4f4f4} tr:nth-child(even) td{background:#fafafa}
img.plot{max-width:100%;border:1px solid #eee;margin:.4rem 0} .muted{color:#777;font-size:.85rem}
.pair{display:inline-block;margin:.3rem;padding:.3rem;border:1px solid #ddd;font-size:.75rem;vertical-align:top}
.pair img{height:96px;margin:2px;background:#fff} .kv td:first-child{font-weight:600}
"""


def esc(x) -> str:
    return html.escape("" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x))


def table(data: pd.DataFrame | Sequence[dict], columns: Sequence[str] | None = None, max_rows: int = 200) -> str:
    """An HTML table (escaped); longer tables are cut with a note."""
    df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    if df.empty:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>"
                   for row in df.head(max_rows).itertuples(index=False))
    more = f'<p class="muted">{len(df) - max_rows} more rows not shown</p>' if len(df) > max_rows else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def key_values(pairs: Iterable[tuple[str, object]]) -> str:
    return '<table class="kv">' + "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in pairs) + "</table>"


def img(src: str, alt: str = "", css_class: str = "plot") -> str:
    return f'<img class="{css_class}" src="{esc(src)}" alt="{esc(alt)}">'


def thumb_data_uri(path: str | os.PathLike, size: int = 128) -> str:
    """A small JPEG of an image as a data: URI (keeps reports self-contained); empty string if unreadable."""
    from imgcls.io import ImageReadError, thumbnail
    try:
        im = thumbnail(path, size)
    except ImageReadError:
        return ""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    body = "".join(f"<h2>{esc(h)}</h2>\n{content}\n" for h, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>{CSS}</style>"
            f"</head><body><h1>{esc(title)}</h1>{intro}\n{body}</body></html>\n")


def write_page(path: str | os.PathLike, title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> Path:
    return write_text(path, page(title, sections, intro))


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot with the headless backend."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt
