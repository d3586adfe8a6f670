"""The owner of every HTML report and figure file: one jinja2 template mechanism, one stylesheet, images embedded.

Every report of every step (eda, clean, preprocess, split, train, ensemble, predict, runs, tune) is rendered from
the package's templates (imgcls/templates: `base.html` + `style.css`, the `components.html` macros, and a page
template per report that extends base) by `render()` / `write_report()`. Images are always embedded as `data:` URIs
(`img()` reads a PNG / JPEG file, `thumb_data_uri()` a small thumbnail of a dataset image), so a report copied,
moved or attached elsewhere shows every image.

    from imgcls import report
    report.write_page("out/report.html", "my report", [("Scores", report.table(df)), ("Plot", report.img(png))])
"""
from __future__ import annotations

import base64
import html
import io
import mimetypes
import os
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from imgcls.fsutil import atomic_path, write_text
from imgcls.outputs import REPORT_HTML


@lru_cache(maxsize=1)
def _env():
    import jinja2
    return jinja2.Environment(loader=jinja2.PackageLoader("imgcls", "templates"),
                              autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def stylesheet() -> str:
    """The one stylesheet (imgcls/templates/style.css), inlined by base.html."""
    return _env().loader.get_source(_env(), "style.css")[0]


def _markup(s: str):
    """Trusted HTML for a template (helpers below return plain str, so `"<h3>..</h3>" + table(df)` concatenates as
    before; page() / safe() mark fragments as HTML when they enter a template)."""
    from markupsafe import Markup
    return Markup(s)


safe = _markup


def _macro(name: str):
    return getattr(_env().get_template("components.html").module, name)


def render(template: str, **context) -> str:
    """Render one of the package's report templates (it extends base.html: title, stylesheet, footer)."""
    from imgcls import __version__
    context.setdefault("subtitle", "")
    return _env().get_template(template).render(css=_markup(stylesheet()), version=__version__,
                                                created=time.strftime("%Y-%m-%d %H:%M"), **context)


def write_report(path: str | os.PathLike, template: str, **context) -> Path:
    """render() into `path`, atomically."""
    return write_text(path, render(template, **context))


def esc(x) -> str:
    return html.escape("" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x))


def _cell(v, digits: int | None, blank: str = ""):
    if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
        return blank
    if digits is not None and isinstance(v, float):
        return f"{v:.{digits}f}"
    if hasattr(v, "__html__"):
        return v
    if isinstance(v, (list, tuple)):     # a setting's names (split's stratify, age_bands): no Python repr shown
        return ", ".join(str(_cell(x, digits, blank)) for x in v)
    return str(v)


def table(data: pd.DataFrame | Sequence[dict], columns: Sequence[str] | None = None, max_rows: int = 200,
          digits: int | None = None, unit: str = "rows", rest: str = "", blank: str = ""):
    """An HTML table (escaped; numbers right-aligned, floats with `digits` decimals when given, a missing value as
    `blank`); longer tables are cut with a note, "733 more `unit` not shown", followed by `rest` when given (where
    they all are: a file)."""
    df = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    if df.empty:
        return str(_macro("table")([], [], 0, []))
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    rows = [[_cell(v, digits, blank) for v in row] for row in df.head(max_rows).itertuples(index=False)]
    return str(_macro("table")([str(c) for c in df.columns], rows, max(0, len(df) - max_rows), numeric, unit, rest))


def key_values(pairs: Iterable[tuple[str, object]]):
    return str(_macro("key_values")([(k, _cell(v, None)) for k, v in pairs]))


def bullets(items: Iterable[object]):
    return str(_macro("bullets")([str(i) for i in items]))


def note(text: object) -> str:
    """A muted paragraph (escaped)."""
    return str(_macro("note")(str(text)))


def heading(text: object, level: int = 3) -> str:
    """A sub-heading inside a section (escaped)."""
    return str(_macro("heading")(str(text), int(level)))


def data_uri(path: str | os.PathLike) -> str:
    """The file's bytes as a data: URI (PNG / JPEG / SVG); '' if the file is missing."""
    path = Path(path)
    if not path.is_file():
        return ""
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def img(src: str | os.PathLike, alt: str = "", css_class: str = "plot"):
    """An <img> whose source is always embedded: `src` is a data: URI or an image file (read now). A missing file
    gives a note instead of a broken image."""
    uri = str(src) if str(src).startswith("data:") else data_uri(src)
    if not uri:
        return note(f"{alt or src}: not written")
    return str(_macro("img")(uri, alt, css_class))


def figure(images: Sequence[tuple[str, str]], lines: Sequence[object]):
    """A small boxed figure: thumbnails (data: URIs with their alt text) and caption lines (escaped)."""
    return str(_macro("figure")([(u, a) for u, a in images], [_cell(x, None) for x in lines]))


def thumb_data_uri(path: str | os.PathLike, size: int = 128, max_pixels: int | None = None) -> str:
    """A small JPEG of an image as a data: URI (keeps reports self-contained); empty string if unreadable.
    `max_pixels`: the step's --max-pixels (None: io's default)."""
    from imgcls.io import DEFAULT_MAX_PIXELS, ImageReadError, thumbnail
    try:
        im = thumbnail(path, size, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    except ImageReadError:
        return ""
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_data_uri(fig, dpi: int = 100) -> str:
    """A matplotlib figure as a PNG data: URI (closed afterwards), for plots that live only in a report."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi)).decode("ascii")


def figure_png(fig, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards), drawn as save_figure draws (_drawn_with_glyphs: a
    fallback font for characters the fonts lack, or the one line saying they are boxes), for a figure that lives
    in memory only: a report's plot, a tracker's image."""
    import matplotlib.pyplot as plt
    buf = io.BytesIO()

    def save():
        buf.seek(0)
        buf.truncate()
        fig.savefig(buf, dpi=dpi, bbox_inches="tight", format="png")
    _drawn_with_glyphs(fig, save)
    plt.close(fig)
    return buf.getvalue()


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    """A report made of titled sections (each an HTML fragment built with the helpers above)."""
    return render("sections.html", title=title, intro=_markup(intro),
                  sections=[(h, _markup(c)) for h, c in sections])


def write_page(path: str | os.PathLike, title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> Path:
    return write_text(path, page(title, sections, intro))


def save_figure(fig, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> Path:
    """Save a matplotlib figure as PNG atomically and close it; `tight` crops it to its artists (one more layout
    pass: leave it off for a figure whose margins are set)."""
    import matplotlib.pyplot as plt
    path = Path(path)
    with atomic_path(path) as tmp:
        _drawn_with_glyphs(fig, lambda: fig.savefig(tmp, dpi=dpi, bbox_inches="tight" if tight else None,
                                                    format="png"))
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot with the headless backend, and the bundled Korean font (korean_font) last in the font
    family list: matplotlib falls back along the list glyph by glyph, so Latin text keeps the default font and a
    class named 고양이 is drawn in NanumGothic. matplotlib's warning for each character no font has (one per character
    per figure, on stderr even with --quiet) is left to _drawn_with_glyphs, and held back in imgcls's own drawing
    alone (glyph_warnings_held): a filter for the process silenced a notebook's own figures' warnings after it.

    The headless backend is chosen only where the process has none yet: a backend a Python caller's session picked
    (pyplot already imported, or MPLBACKEND: a Jupyter kernel's inline one) is kept, as every figure here is saved
    and closed with any backend. Forcing Agg switched a notebook's backend for the rest of the session: after
    run_eda, its own `plt.show()` showed nothing."""
    import sys

    import matplotlib
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    font = korean_font()
    family = list(matplotlib.rcParams["font.family"])
    if font is not None and font not in family:
        matplotlib.rcParams["font.family"] = family + [font]
    return plt


KOREAN_FONT_PACKAGE = "koreanize_matplotlib"     # the koreanize-matplotlib dependency: NanumGothic (SIL OFL) .ttf files


@lru_cache(maxsize=1)
def korean_font() -> str | None:
    """The family name of the Korean font the koreanize-matplotlib dependency ships (NanumGothic), its files
    registered with matplotlib once; None where the package or its font files are missing (the figures then draw
    Hangul as boxes, said once by _drawn_with_glyphs). The package is found, not imported: importing it sets
    matplotlib's global rcParams."""
    import importlib.util

    from matplotlib import font_manager
    try:
        spec = importlib.util.find_spec(KOREAN_FONT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    names = []
    for ttf in sorted(f for d in folders for f in Path(d, "fonts").glob("NanumGothic*.ttf")):  # every weight
        try:
            font_manager.fontManager.addfont(str(ttf))
        except (OSError, RuntimeError):      # an unreadable file: the others still serve
            continue
        names.append(font_manager.fontManager.ttflist[-1].name)
    return names[0] if names else None


_MISSING_GLYPH = r"Glyph \d+ .*missing from"       # matplotlib's "Glyph 44256 (...) missing from font(s) DejaVu Sans."
_glyphs: dict[str, set[int]] = {"said": set()}     # the characters said to be drawn as boxes, in this process


@contextmanager
def glyph_warnings_held():
    """matplotlib's missing-glyph warnings ignored for the code inside alone: imgcls's drawing of its own figures
    outside save_figure / figure_png (a layout pass), whose save says once which characters are boxes
    (_drawn_with_glyphs). warnings.catch_warnings swaps the process's filters, which is not thread-safe: imgcls
    draws its figures in the main thread only (its threads print progress lines or import)."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MISSING_GLYPH, category=UserWarning)
        yield


ELLIPSIS = "\u2026"


def fit_text(text: str, inches: float, fontsize: float, suffix: str = "") -> str:
    """`text` + `suffix` as a figure draws it within `inches` at `fontsize` points (matplotlib's fonts, fallbacks
    included): where longer, `text` is cut and ends in an ellipsis, `suffix` (a count) kept whole. For figure text
    alone: a ~100-character class name in a title left no layout for tight_layout (a UserWarning on screen); tables,
    CSVs and JSON keep the whole name."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath
    prop, path = FontProperties(size=fontsize), TextToPath()

    def fits(s: str) -> bool:
        return path.get_text_width_height_descent(s + suffix, prop, ismath=False)[0] <= inches * 72
    with glyph_warnings_held():      # a character no font has: said when the figure is saved (_drawn_with_glyphs)
        if fits(text):
            return text + suffix
        lo, hi = 0, len(text)        # the longest start of `text` that fits with the ellipsis
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(text[:mid] + ELLIPSIS) else (lo, mid - 1)
    return text[:lo].rstrip() + ELLIPSIS + suffix


# the most a class name takes as a tick label: a ~100-character name drawn whole made the class-count figure 1049 px
# tall where 449 px held the bars (eda, split, predict figures and the confusion matrices alike); wide enough for the
# mask task's titles at 10 pt whole ('17 (not_wear, female, >=60)' is 2.03 in), which 1.8 in cut
TICK_INCHES = 2.6


def tick_labels(labels: Iterable[object], fontsize: float, inches: float = TICK_INCHES) -> list[str]:
    """Class names (profiles.class_titles) as a figure's tick labels at `fontsize`: each cut by fit_text to
    `inches`; tables, CSVs and JSON keep the whole name. Names that the cut would draw alike (a long shared start:
    `..._2019_left` / `..._2019_right`) keep the end where they differ after the ellipsis instead, or, alike at
    the end too, the part from where they differ."""
    names = [str(s) for s in labels]
    cut = [fit_text(s, inches, fontsize) for s in names]
    alike: dict[str, list[int]] = {}
    for i, s in enumerate(cut):
        alike.setdefault(s, []).append(i)
    for group in alike.values():
        if len({names[i] for i in group}) < 2:
            continue
        start = len(os.path.commonprefix([names[i] for i in group]))
        tails = {i: _fitting_end(names[i][start:], inches / 2, fontsize) for i in group}
        if len({tails[i] for i in group}) < len({names[i] for i in group}):
            # alike at the end too (they differ in the middle): the part from where they differ, cut at its end
            for i in group:
                cut[i] = fit_text(names[i][:start], inches, fontsize,
                                  suffix=fit_text(names[i][start:], inches / 2, fontsize))
            continue
        for i in group:
            cut[i] = fit_text(names[i][:len(names[i]) - len(tails[i])], inches, fontsize, suffix=tails[i])
    return cut


def _fitting_end(text: str, inches: float, fontsize: float) -> str:
    """The longest end of `text` drawn within `inches` (tick_labels' distinguishing tail)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fit_text(text[-mid:], inches, fontsize) == text[-mid:] else (lo, mid - 1)
    return text[-lo:]


def _drawn_with_glyphs(fig, save) -> None:
    """save() the figure. Where its text has characters the fonts lack (Chinese or Japanese class names, say; Korean
    ones where korean_font is missing): with an installed font that has them added as a fallback (for later figures
    too) and saved again; with none, the characters stay boxes, said once per characters (info: a notebook's second
    eda of other class names is told again, not each figure of one)."""
    import re
    import warnings

    import matplotlib
    from matplotlib.text import Text
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=_MISSING_GLYPH, category=UserWarning)
        # matplotlib's note when placing a loc="best" legend took over a second (a busy machine): timing, not a fault
        warnings.filterwarnings("ignore", message="Creating legend with loc=\"best\" can be slow", category=UserWarning)
        save()
    missing, lacking = set(), set()
    for w in caught:
        m = re.match(r"Glyph (\d+) .*missing from font\(s\) (.*)\.$|Glyph (\d+) ", str(w.message))
        if m and issubclass(w.category, UserWarning):
            missing.add(int(m.group(1) or m.group(3)))
            lacking.update((m.group(2) or "").split(", "))
        else:       # any other warning as it came
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not missing:
        return
    font = font_with(missing, exclude=lacking)
    if font is not None:
        family = [f for f in matplotlib.rcParams["font.family"] if f != font] + [font]
        matplotlib.rcParams["font.family"] = family        # matplotlib falls back along the list, glyph by glyph
        for t in fig.findobj(Text):
            t.set_fontfamily([f for f in t.get_fontfamily() if f != font] + [font])
        with glyph_warnings_held():
            save()
    elif missing - _glyphs["said"]:
        _glyphs["said"] |= missing
        from imgcls.console import info
        from imgcls.options import shown
        info(f"figures: class names (or other text) with characters no installed font has "
             f"({shown(sorted(map(chr, missing)), 8, sep='')}) are drawn as boxes in the PNGs; {REPORT_HTML} shows "
             f"them as text. Installing a font that has them (for Korean, imgcls's dependency koreanize-matplotlib, "
             f"which ships NanumGothic; Noto Sans CJK for Chinese, Japanese) draws them")


def font_with(codepoints: set[int], exclude: Iterable[str] = ()) -> str | None:
    """The name of an installed font (matplotlib's font list) that has every one of `codepoints`, or None. `exclude`:
    the fonts that lacked them (another file of the same family, a bold one say, is not what the text is drawn in)."""
    from matplotlib import font_manager
    exclude = set(exclude) | {font_manager.FontProperties().get_name()}       # the default font: it lacks them
    for entry in sorted(font_manager.fontManager.ttflist, key=lambda e: (e.name, e.fname)):
        if (entry.name not in exclude and "last resort" not in entry.name.lower()
                and codepoints <= _charmap(entry.fname)):
            return entry.name
    return None


@lru_cache(maxsize=None)
def _charmap(fname: str) -> frozenset[int]:
    """The characters a font file has (empty if FreeType cannot read it)."""
    from matplotlib.ft2font import FT2Font
    try:
        return frozenset(FT2Font(fname).get_charmap())
    except Exception:       # a broken or unsupported font file in the user's font folders: it has nothing
        return frozenset()
