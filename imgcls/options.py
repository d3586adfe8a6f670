"""Options have one source of truth: the step's config dataclass.

Each field is declared with `option(...)`: its default, its choices, its numeric range, its help text and the
`--help` panel it is listed in. From those declarations

- `cli_parameters(Config)` builds the Typer parameters of a command (`imgcls.cli.common.command(options=...)`), so
  the defaults and choices shown by `--help` and used by the CLI are the dataclass's own: they cannot disagree;
- `check(cfg)` validates a config (types, choices and ranges, and options that would be ignored: `needs` /
  `conflicts`) with one line naming the option and what it accepts, the same for a command line, a config.yaml and
  a Python caller; steps call it before any long work.

Only the standard library and imgcls.errors are imported here, typer where the parameters are built (cli_parameters):
building `imgcls --help` must stay instant.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import functools
import inspect
import math
import numbers
import os
import types
import typing
from contextlib import contextmanager
from dataclasses import MISSING, dataclass
from typing import Any, Callable

from imgcls.errors import UserError

META_KEY = "imgcls.option"


@dataclass(frozen=True)
class Spec:
    """How one config field is offered and checked. `lo` / `hi`: the numeric range (inclusive unless `lo_open` /
    `hi_open`). `validator`: a further check of a value's spelling (e.g. --device), raising UserError; a scalar field
    that declares a validator or choices is left to them, its type rule off (_check_scalar), so a validator refuses a
    value of a wrong type itself. `flags`: Typer parameter declarations when the derived `--field-name` is not the flag
    (e.g. "--amp/--no-amp", "--format"). `cli=False`: config.yaml / Python only. `cli_type`, `to_cli`, `from_cli`: when
    the command line spells the value differently (a list as "a,b", a path). `none`: what a None default means, shown as
    the default in --help. `needs`: the fields this option acts through, each a name (that field must be set: true, not
    None), (name, value), (name, (value, value, ...)): one of those values, or (name, When(...)): a test of that field's
    value (and of the config, where one is at hand); `conflicts`: a field this one is an alternative to. A value other
    than the default that would be ignored (its `needs` unmet, or its alternative also set) is refused by check() in one
    line, rather than silently doing nothing. `per_command`: (command, ((key, value), ...)) pairs, the `help` / `none`
    another command that offers this field shows in its --help where the option means something else there (tune's
    --tracking-uri: the study folder's store); see for_command. `off`: (value, what it means), the value that says what
    a Python caller's None is taken to mean: of a field whose type takes no None (max_pixels 0: no limit, --workers 1,
    --tta none), the refusal of a None names it, and a run's record that holds null (such a None, before it was refused)
    reads as it (recorded_nulls); of one that takes None meaning off (train's --oversample), a command line types a None
    as it (cli_words). `blank_fix`: a list option's fix of a blank item where dropping it is none, its items pairing one
    to one with something else (--head-weights, one per head: 'give a weight in its place (one per head)'); else: drop
    it.
    """
    help: str
    panel: str | None = None
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    validator: Callable[[Any], None] | None = None
    flags: tuple[str, ...] = ()
    cli: bool = True
    cli_type: Any = None
    to_cli: Callable[[Any], Any] | None = None
    from_cli: Callable[[Any], Any] | None = None
    none: str | None = None
    needs: tuple = ()
    conflicts: str | None = None
    per_command: tuple = ()
    off: tuple = ()
    blank_fix: str = ""


PER_COMMAND_KEYS = ("help", "none")     # what a command may say of a shared option in its own words


def for_command(spec: Spec, command: str | None) -> Spec:
    """The declaration as `command` ("tune", "models list") offers it: its `per_command` help / none, where it
    has some for that command, else the declaration itself."""
    for name, changes in spec.per_command:
        if name == command:
            return dataclasses.replace(spec, **dict(changes))
    return spec


@dataclass(frozen=True)
class When:
    """A need no list of values can state (a value other than off; an optimizer of timm's registry that has a
    momentum): `test(value, cfg)` says whether the needed field's value meets it -- `cfg`, the whole config, is None
    where only the value is known (a tune space's choices) -- and `text` how the need reads after the flag
    ("other than off"); `has(value, cfg)`, where given, how the run's own value reads when it does not ("--optimizer
    sam --sam-base adamw"). `absent`: the need is that field's absence (--pretrained acts only without --init-from /
    --weights, which give the starting weights themselves): `text` then says why, after the other flag's value
    ("whose weights the run starts from")."""
    test: Callable[[Any, Any], bool]
    text: str
    has: Callable[[Any, Any], str] | None = None
    absent: bool = False

    def __str__(self) -> str:
        return self.text


def without(why: str) -> When:
    """The need that another field be absent (None), `why` said after its value when it is not."""
    return When(lambda value, _cfg: value is None, why, absent=True)


def option(default: Any = MISSING, *, factory: Callable[[], Any] | None = None, help: str, **spec: Any):
    """A config field with its option declaration (see Spec for the keywords)."""
    if "choices" in spec and spec["choices"] is not None:
        spec["choices"] = tuple(spec["choices"])
    if "per_command" in spec:       # {"tune": {"help": ...}}: hashable pairs, as the frozen Spec's other fields
        for command, changes in spec["per_command"].items():
            unknown = set(changes) - set(PER_COMMAND_KEYS)
            if unknown:
                raise ValueError(f"per_command[{command!r}] may set only {PER_COMMAND_KEYS}, not {sorted(unknown)}")
        spec["per_command"] = tuple((command, tuple(changes.items()))
                                    for command, changes in spec["per_command"].items())
    meta = {META_KEY: Spec(help=help, **spec)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def seed_option(panel: str = "Runtime"):
    """--seed, the same declaration in every step that draws random numbers (numpy seeds are 0 .. 2**32 - 1)."""
    return option(0, panel=panel, lo=0, hi=2**32 - 1, help="Random seed (recorded in the outputs).")


def option_text(value: Any) -> Any:
    """An option's value as imgcls shows it outside a command line (trackers' params, tune's lines naming a space's
    value): a bool as true / false, as config.yaml and a space file write it (str(True) is 'True'); anything else
    unchanged."""
    return str(value).lower() if isinstance(value, bool) else value


def python_too(cli: str, python: str) -> str:
    """A fix a library error names, in the command line's words and then a Python caller's: 'choose another --name
    (Python: name=)', 'see imgcls tune --show-space (Python: imgcls.tune.space.default_space_text())'. A step's
    error is the CLI's one line, and a script or notebook gets the same text as the UserError's: a flag that names
    a field reads as its keyword there (README, From Python), but an imgcls command, or a flag whose keyword is
    another word, is no fix as written."""
    return f"{cli} (Python: {python})"


def choose_another(flag_name: str) -> str:
    """The fix of an output path that is taken, for both callers: 'choose another --out (Python: out=)'. The flag
    names the step's keyword (--out: out=, --study: study=, --name: name=)."""
    return python_too(f"choose another {flag_name}", flag_name.lstrip("-").replace("-", "_") + "=")


def join(values) -> str:
    """A list option's command-line spelling: 30,60."""
    return ",".join(str(v) for v in values)


def shown(names, k: int = 3, sep: str = ", ", listed_in: str = "") -> str:
    """A list a message cuts to its first `k` names, and how many more: 'a, b, c and 2 more' (the whole list where it
    has `k` or fewer). `sep` joins the names ('; ' for names that hold commas); `listed_in`, where the whole list is,
    follows the count: 'a, b, c and 2 more (all in trials.csv)'."""
    names = [str(n) for n in names]
    if len(names) <= k:
        return sep.join(names)
    return sep.join(names[:k]) + f" and {len(names) - k} more" + (f" (all in {listed_in})" if listed_in else "")


def list_items(flag_name: str, text: Any, takes: str, item: str = "value",
               left_out: str = "for its default") -> list[str]:
    """The items of a comma-separated option, stripped: '30, 60' -> ['30', '60']. The one rule of every list option's
    command-line text: a text that names no item ('' -- an empty shell variable --, ',') is refused in one line
    naming the option, what it takes and what leaving it out does (`item`: what one item is, 'age'; `left_out`: how
    that reads after 'drop --flag'), rather than read as an empty list (--age-bands '' broke split and eda with an
    IndexError, --head-columns '' train) or as the default unsaid. A Python caller's list or tuple (a config's
    validate: head_columns=[]) is read item by item, and refused so too, shown as given."""
    listed = isinstance(text, (list, tuple))
    items = [x for x in (str(x).strip() for x in (text if listed else str(text).split(","))) if x]
    if not items:
        given = repr(text) if listed else f"'{text}'"
        raise UserError(f"{flag_name} {given} names no {item}: it takes {takes}; drop {flag_name} {left_out}")
    return items


def int_list(flag_name: str, example: str = "30,60") -> Callable[[str], list[int]]:
    """Parser of a comma-separated integer option, e.g. --age-bands 30,60 (one line naming the flag when not)."""
    takes = f"comma-separated integers, e.g. {example}"

    def parse(text: str) -> list[int]:
        items = list_items(flag_name, text, takes)
        try:
            return [int(x) for x in items]
        except ValueError:
            raise UserError(f"{flag_name} takes {takes} (got '{text}')") from None
    return parse


def specs(cls) -> dict[str, tuple[dataclasses.Field, Spec]]:
    """Every declared option of a config class (or instance), in field order."""
    return {f.name: (f, f.metadata[META_KEY]) for f in dataclasses.fields(cls) if META_KEY in f.metadata}


def setting_text(cls, name: str, value: Any) -> Any:
    """A setting's value as a report's Settings table shows it: unset (None, an empty list) as what that means, the
    option's `none` (as --help shows its default), else "none"; a bool as true / false (option_text, as config.yaml
    writes it); anything else unchanged. An empty cell read as a value lost (split's folds, cache_dir). `cls`: the
    step's config dataclass (a setting that is none of its fields: "none" when unset)."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        spec = specs(cls).get(name)
        return spec[1].none if spec is not None and spec[1].none else "none"
    return option_text(value)


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def flag(name: str, spec: Spec | None = None) -> str:
    """The long flag a user types for a field, e.g. --img-size (the first declared one when flags are given)."""
    for decl in (spec.flags if spec else ()):
        for part in decl.split("/"):
            if part.strip().startswith("--"):
                return part.strip()
    return "--" + name.replace("_", "-")


def recorded_flags(cls, values: dict, names: typing.Iterable[str]) -> list[str]:
    """The command-line words that give the recorded `values` (a step's settings as its summary wrote them) of the
    fields `names` where they differ from cls's defaults, e.g. ['--no-near-dup', '--seed', '3']: what a printed
    command needs to redo the step as it ran. A value the command line cannot spell (None beside a set default) is
    left out."""
    table = specs(cls)
    # raw value against raw default (a YAML list against a tuple), not cli_default's form: that is Typer's default
    same = lambda a, b: (list(a) if isinstance(a, (list, tuple)) else a) == (list(b) if isinstance(b, (list, tuple))
                                                                          else b)
    words: list[str] = []
    for name in names:
        if name not in values or name not in table:
            continue
        f, spec = table[name]
        value, default = values[name], default_of(f)
        if value is None or same(value, default):
            continue
        words += cli_words(name, spec, bool(value) if isinstance(default, bool) else value) or []
    return words


def range_text(spec: Spec) -> str:
    """'> 0', '>= 1', 'between 0 and 1', 'in [0, 1)'."""
    lo, hi = spec.lo, spec.hi
    if lo is not None and hi is not None:
        if not spec.lo_open and not spec.hi_open:
            return f"between {_num(lo)} and {_num(hi)}"
        return f"in {'(' if spec.lo_open else '['}{_num(lo)}, {_num(hi)}{')' if spec.hi_open else ']'}"
    if lo is not None:
        return f"{'>' if spec.lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f"{'<' if spec.hi_open else '<='} {_num(hi)}"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def in_range(value: float, spec: Spec) -> bool:
    if spec.lo is not None and (value <= spec.lo if spec.lo_open else value < spec.lo):
        return False
    if spec.hi is not None and (value >= spec.hi if spec.hi_open else value > spec.hi):
        return False
    return True


def keyword_note(*named: tuple[str, Spec]) -> str:
    """' (Python: samples_per_class=)': the keywords of the fields among `named` (name, declaration) whose flag is
    another word (--samples, --format, --eval, --weight-metric), which an error naming them by their flag is
    followed by (README, From Python: a flag with no keyword of its name); '' where each flag spells its keyword."""
    odd = dict.fromkeys(n for n, spec in named if flag(n, spec) != "--" + n.replace("_", "-"))
    return f" (Python: {', '.join(n + '=' for n in odd)})" if odd else ""


@contextmanager
def _keywords_named(*named: tuple[str, Spec]) -> typing.Iterator[None]:
    """Around a check naming these fields by their flags: a UserError raised there ends with keyword_note's for those
    its text names."""
    import re
    try:
        yield
    except UserError as e:      # a flag named whole: --eval is not named by --eval-split
        note = keyword_note(*((n, spec) for n, spec in named      # not where the text gives the keyword's fix
                              if re.search(re.escape(flag(n, spec)) + r"(?![\w-])", str(e))
                              and not re.search(r"(?<![\w-])" + n + "=", str(e))))
        if note and not str(e).endswith(note):
            e.args = (str(e) + note, *e.args[1:])
        raise


def whole_number(value: Any) -> int | None:
    """`value` as a plain int where it is a whole number: an int or another integral type (numpy's np.int64, as a
    notebook's np.arange gives), not a bool nor a float however whole (2.0); else None: what a keyword no field
    declares takes (run_train's stop_after, export_onnx's batch); check's int fields as plain_value stores them."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def whole_argument(step: str, name: str, value: Any, lo: int | None = None, hi: int | None = None,
                   or_none: bool = False) -> int | None:
    """A library function's keyword that no config field declares (export_onnx's batch and seed, run_train's
    stop_after) as the plain int it is (whole_number), where it is a whole number in [lo, hi]; else one line naming
    the function, the keyword, its range and the value: "export_onnx's batch must be a whole number >= 1 (got 0)".
    `or_none`: None passes as None (and the refusal says so: ', or None')."""
    if value is None and or_none:
        return None
    bounds = Spec(help="", lo=lo, hi=hi)
    whole = whole_number(value)
    if whole is None or not in_range(whole, bounds):
        raise UserError(f"{whose(step)} {name} must be a whole number {range_text(bounds)} (got {value!r})"
                        + (", or None" if or_none else ""))
    return whole


def plain_value(value: Any) -> Any:
    """A number of another type (numpy's np.int64, np.float32, np.float64) as the plain int / float it is, a numpy
    bool (np.bool_) as a bool, in a list or tuple too (head_weights=[np.float64(1), ...]): config.yaml's
    yaml.safe_dump refuses those, write_json wrote an np.int64 as a string; anything else as given (the same
    object where nothing in it changed). A one-dimensional numpy array (head_weights=np.array([1., 1., 2.])) is the
    list of plain values it holds (tolist, then each item made plain: an object array's items are numpy's still,
    np.str_('30') was said as such and np.int64(30) kept)."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 1 and hasattr(value, "tolist"):
        return plain_value(value.tolist())
    if isinstance(value, (list, tuple)):
        items = [plain_value(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else type(value)(items)
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()         # a numpy scalar: np.bool_ is no numbers.Number
    if type(value) in (int, float) or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return value
    whole = whole_number(value)
    return float(value) if whole is None else whole


def check_value(name: str, value: Any, spec: Spec, kind: str | None = None, takes_none: bool = True,
                item: type | None = None) -> None:
    """One field: a choice among its choices, a number within its range (None passes: 'not set', where
    `takes_none`: the field's declared type has None, _takes_none). `kind` (check() reads it from the field's
    declared type, _kind): a scalar's value must be of that type (_check_scalar: epochs=1.5 passed the range check
    and broke training with a TypeError after the data was read, pretrained='no' trained from pretrained weights),
    'list' refuses a string (stratify='label' was read as the columns 'l', 'a', 'b', ...): a Python caller's wrong
    type is one line, as the command line's; `item`: a list's declared item type (_item_type), each item checked
    by _check_items. A field whose flag is another word than its keyword (--samples: samples_per_class) is followed
    by its keyword."""
    with _keywords_named((name, spec)):
        _check_value(name, value, spec, kind, takes_none, item)


def _check_value(name: str, value: Any, spec: Spec, kind: str | None = None, takes_none: bool = True,
                 item: type | None = None) -> None:
    """check_value's checks."""
    if value is None:
        if not takes_none:     # epochs=None, a config.yaml's `aug: null`: a TypeError once the data was read
            # a field no flag sets (cli=False: SplitConfig's extra) by its keyword, not a --extra there is not
            who = flag(name, spec) if spec.cli else f"{name}="
            raise UserError(f"{who} cannot be None; give {_wanted(spec, kind)}, or leave it out for its default")
        return
    opt = flag(name, spec)
    value = _check_type(name, opt, value, spec, kind, item)
    if spec.choices is not None and isinstance(value, list):    # a repeatable option: each value is a choice
        for v in value:
            _check_value(name, v, spec, takes_none=False)
        return
    if spec.choices is not None and value not in spec.choices:
        raise UserError(f"unknown {opt} '{value}'; use one of: {', '.join(map(str, spec.choices))}")
    if spec.lo is not None or spec.hi is not None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UserError(f"{opt} must be a number {range_text(spec)} (got {value!r})")
        if value != value or not in_range(value, spec):   # NaN is in no range
            raise UserError(f"{opt} must be {range_text(spec)} (got {value})")
    if spec.validator is not None:
        spec.validator(value)


# The one truth table of a yes / no text (case and surrounding spaces ignored): a manifest's bool cell
# (manifest.parse_bool), a runs --filter value of a yes / no option, a bool option's text (_as_item). Here, in the
# standard library, for what imports no pandas.
TRUE_WORDS = ("true", "1", "1.0", "yes", "y", "t")
FALSE_WORDS = ("false", "0", "0.0", "no", "n", "f")


def truth(text: Any) -> bool | None:
    """True / False for a text (or a value's str()) among TRUE_WORDS / FALSE_WORDS, None for anything else."""
    word = str(text).strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


NO_WEIGHT = "every weight is 0"     # weights_fault's answer where no weight is > 0


def weights_fault(weights, one_positive: bool = True) -> str:
    """The one rule of weights that scale losses or votes (train --head-weights, ensemble --weights, an ensemble
    spec's members' weights): each a finite number >= 0 and, `one_positive`, one at least > 0. '' where `weights`
    (numbers) keep it; else what is wrong: the first weight that breaks it as float() spells it ('nan', '-1.0'; 'a
    number past a float's range' for an int no float holds), or NO_WEIGHT. Each caller says it in its own words."""
    for w in weights:
        try:
            said = float(w)
        except OverflowError:       # an int past a float's range (10**400): no finite weight
            return "a number past a float's range"
        if not (math.isfinite(said) and said >= 0):
            return str(said)
    if one_positive and len(weights) and not any(float(w) > 0 for w in weights):
        return NO_WEIGHT
    return ""


def check_type(cls, name: str, value: Any) -> None:
    """The type rule alone of a value (not None) for field `name` of config class `cls`, check()'s own (_check_type):
    a config file's mapping before the config is built (TrainConfig.from_dict, whose line its caller prefixes with
    the file's name); choices, ranges and validators are check()'s."""
    spec = specs(cls)[name][1]
    if value is not None:
        with _keywords_named((name, spec)):
            _check_type(name, flag(name, spec), value, spec, _kind(cls, name), _item_type(cls, name))


def _check_type(name: str, opt: str, value: Any, spec: Spec, kind: str | None, item: type | None) -> Any:
    """_check_value's type rule (a list's, its items', a scalar's); returns the value as the rest checks it (a numpy
    array of a list option as the list check() stores, plain_value)."""
    if kind == "list":
        value = plain_value(value)
    if kind == "list" and isinstance(value, (str, numbers.Number)):     # age_bands=30: a TypeError of its validator
        what = f"the string {value!r}" if isinstance(value, str) else repr(value)
        raise UserError(python_too(f"{opt} takes a list of values, not {what}", f"{name}=[...]"))
    if kind == "list" and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) > 1:
        # np.array([['label', 'gender']]) was taken unchecked (plain_value makes a list of a 1-d array alone): a
        # column named by the row ['label', 'gender'], an item rule that never ran, a ValueError of its truth
        shape = "x".join(map(str, value.shape))
        raise UserError(python_too(f"{opt} takes a list of values, not a {value.ndim}-dimensional array (shape "
                                   f"{shape})", f"{name}=[...]"))
    if kind == "list" and isinstance(value, (list, tuple)):
        _check_items(name, opt, value, spec, item)
    if kind in SCALARS and spec.choices is None and spec.validator is None:
        _check_scalar(name, opt, value, spec, SCALARS[kind])
    return value


# _check_items' and _check_scalar's word for a declared type; SCALARS: _kind's names of the scalar ones
ITEM_TAKES = {int: "a whole number", float: "a number", bool: "True or False", str: "a string"}
SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


def item_fits(v: Any, item: type) -> bool:
    """Whether one value (a list option's item, a scalar option's value) is of its declared type as the command
    line's parser gives it (an int option's int, a float option's float, a bool, a text's str): a numpy int is a
    whole number and a whole number a number, a numpy bool a bool (plain_value stores them plain), a bool or a text
    ('57') neither; a float (57.0) no whole number, 1 no bool."""
    if item is int:
        return whole_number(v) is not None
    if item is float:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)
    if item is bool:
        return isinstance(plain_value(v), bool)
    return isinstance(v, item)


def _as_item(v: Any, item: type) -> Any:
    """A wrong value as the command line would read its text (int('57'), float('1.5'), a bool's 'no' or 1 as the one
    truth table reads them: truth), a whole float as the whole number it is (30.0: 30); None where it reads as none
    ('x', 57.5 for a whole number, None, a bool for a number) and for a text item: a number's str() (tta=2: '2',
    keep=3, bg_color=0, filter=[1]) is a fix the option's own reading then refuses (parse_tta: unknown --tta '2'),
    and no other value is some text of its own."""
    if v is None or item is str or (isinstance(v, bool) and item is not bool):
        return None
    if item is int and isinstance(v, numbers.Real) and float(v).is_integer():
        return int(v)
    if item is bool:
        return truth(v)
    try:
        return item(str(v).strip())
    except ValueError:
        return None


def _check_scalar(name: str, opt: str, value: Any, spec: Spec, typ: type) -> None:
    """The one rule of a scalar option's type, a Python caller's, a config.yaml's or a tune space's value (the
    command line's parser gives each its type): the value must be of the field's declared type as item_fits says
    (int, float, bool, str; a str field, a path among them, takes a pathlib.Path too), else one line naming the
    option, its range where declared, the value and the fix: the value as the command line would read it, where
    it reads so (_as_item). A float for a whole number (epochs=1.5) broke training with a TypeError after the data
    was read; a text for a bool (pretrained='no', ood='false') was taken as true, silently, a number (ema=1) kept
    as it is; a number for a text was taken (model=3) or failed later with a traceback (tta=2, keep=3): a text's
    refusal offers no fix, a number's str() ('2') being no text the option takes; a text for a float with no range
    (ood_threshold='0.5') was taken. A field whose declaration checks its value itself
    (choices, a validator: the --oversample target 30, --folds 0, --timeout 3600) is left to that check."""
    if item_fits(value, typ) or (typ is str and isinstance(value, os.PathLike)):
        return
    ranged = (spec.lo is not None or spec.hi is not None) and typ in (int, float)
    read = _as_item(value, typ)
    fix = f"; give {name}={read!r}" if read is not None else ""
    raise UserError(f"{opt} must be {ITEM_TAKES[typ]}{' ' + range_text(spec) if ranged else ''} (got {value!r}){fix}")


def _check_items(name: str, opt: str, value: list | tuple, spec: Spec, item: type | None) -> None:
    """The one rule of a list option's items, a Python caller's or a config.yaml's (the command line's text is
    list_items' and the option's parser's): an item that is a blank string ('', ' ') is refused in one line naming
    the option and the list without it, rather than taken: stratify=['label', ' '] was refused only after the data
    was read (no column ' '), drop_ages=[57, ''] failed with a TypeError, head_columns=['mask', ''] trained a head
    of no column. Then each item must be of the list's declared type `item` (_item_type: Sequence[int] -> int;
    None: not checked), as the command line's parser gives it (item_fits): drop_ages=['57', 'x'] dropped no one
    unsaid (no age is a text), head_weights=[1.0, None] was refused only as a count of weights, not naming the
    None. The refusal names the option, the first wrong item and the fix: the list as the command line would read
    it where each item reads so ('57' -> 57), else what each item must be. A blank in a list whose items pair with
    something (head_weights=[1, '', 1]: one weight per head) is a missing value, whose fix is the declaration's
    `blank_fix` (dropping it, the count of weights no longer matched the heads). An empty list is each option's own
    (stratify=[]: no stratification; head_columns=[]: refused by list_items). A choice list's items are its
    choices' to name, a blank one too ("unknown --tracker ''"), and a repeated flag's blank (_repeated: the command
    line's --filter '' reaches check in its list) is its validator's where it declares one ("--filter '': write
    COLUMN=VALUE"): the command line is not shown a Python list and a Python fix."""
    if spec.choices is not None:
        return
    blank = [isinstance(v, str) and not v.strip() for v in value]
    if any(blank) and not (_repeated(spec) and spec.validator is not None):
        kept = type(value)(v for v, b in zip(value, blank) if not b)
        fix = spec.blank_fix or "drop it" + (f" ({name}={kept!r})" if kept else f", or {opt} itself for its default")
        raise UserError(f"{opt} {value!r} holds a blank item; {fix}")
    if item not in ITEM_TAKES:
        return
    wrong = [v for v in value if not item_fits(v, item)]
    if not wrong:
        return
    takes = ITEM_TAKES[item]
    read = [v if item_fits(v, item) else _as_item(v, item) for v in value]
    fix = f"give {name}={type(value)(read)!r}" if None not in read else f"give each item as {takes}"
    raise UserError(f"{opt} {value!r} holds {wrong[0]!r}, not {takes}; {fix}")


def _repeated(spec: Spec) -> bool:
    """Whether the command line gives a list option as a repeated flag (cli_type list[str]: --tracker a --tracker b),
    whose items reach check as typed, a blank one included, rather than as a comma-separated text that list_items
    reads (--age-bands 30,,60: no blank item)."""
    return any(typing.get_origin(t) is list for t in (spec.cli_type, *typing.get_args(spec.cli_type)))


def check(cfg: Any, names: typing.Iterable[str] | None = None, acting_later: typing.Collection[str] = ()) -> None:
    """Every declared option of `cfg` (or only `names`): types, choices and ranges, one line naming the first bad
    one.
    `acting_later`: fields whose `needs` values set later meet (imgcls tune: a fixed --smoothing acts in the trials
    whose space value is --loss label-smoothing); they are not refused for their needs here. A number of another
    type (a notebook's np.int64, np.float32, np.bool_, in a list too) is stored as the plain value it is
    (plain_value)."""
    table = specs(cfg)
    for name in (table if names is None else names):
        value = getattr(cfg, name)
        check_value(name, value, table[name][1], _kind(type(cfg), name), _takes_none(type(cfg), name),
                    _item_type(type(cfg), name))
        plain = plain_value(value)
        if plain is not value:
            setattr(cfg, name, plain)
    for name in (table if names is None else names):
        if name not in acting_later:
            check_acts(cfg, name, table)


def empty_path(name: str, option: bool = False) -> str:
    """The line refusing an empty path `name` (an option's flag, an argument's metavar): the CLI's for its Path
    parameters (cli.common._refuse_empty_paths), `imgcls runs "$DIR"`'s, whose paths arrive as text, and
    not_empty_path's."""
    return f"{name} '' names no path (an unset shell variable?): give one" \
        + (f", or leave {name} out" if option else "")


def not_empty_path(flag: str) -> Callable[[Any], None]:
    """The validator of a text option naming a file (`runs --csv "$F"` with F unset read '.': '--csv . is an
    existing folder'): '' refused by empty_path."""
    def check_path(value) -> None:
        if value == "":
            raise UserError(empty_path(flag, option=True))
    return check_path


def a_name(name: str) -> str:
    """`name` with its article, for the "(got a <type>)" of a TypeError and the "must be a <class>" before it:
    'an int', 'an ndarray', 'a list', 'a UserError'. The one owner of that wording (check_arguments, path_list,
    check_callbacks, run_train's study): "got a int" was written by hand at each."""
    vowel = name[:1].lower() in "aeiou" and not name.lower().startswith(("us", "uni", "uint"))
    return ("an " if vowel or name.startswith("nd") else "a ") + name


def whose(step: str) -> str:
    """The possessive of a step's (a library function's, a command's) name, the one owner of it in the lines that
    name its arguments: "run_train's cfg", "run_runs' paths" (an apostrophe alone after a plural's s, as the codebase
    writes find_checkpoints' which), "run_preprocess's out" (after ss: preprocess's, as it writes it); "run_runs's"
    and "run_runs'" were both said once."""
    return step + ("'" if step.endswith("s") and not step.endswith("ss") else "'s")


def a_type(value) -> str:
    """The class of `value` with its article (a_name): 'an int' for 5, 'a dict' for {}; None is 'None' ("got
    None", not "got a NoneType")."""
    return "None" if value is None else a_name(type(value).__name__)


PATH = (str, os.PathLike)       # check_arguments' class of a path argument (with what it names: "a path to a CSV")
SRC_PATH = "a path to a dataset folder or a manifest CSV"     # what a step's input (its SRC) takes


def check_arguments(step: str, required: typing.Collection[str] = (), **given: tuple) -> None:
    """A library step's config / layout / path arguments, `name=(value, its class)` or `name=(value, its class,
    what to pass)`, each None (unless its name is in `required`: run_train's cfg) or of its class: the steps do not
    take them in one order (run_clean(src, out, cfg, opts), run_split(src, out, opts, cfg)), and one given in the
    other's place failed deep inside (AttributeError: 'SplitConfig' object has no attribute 'csv'), a DataFrame
    where a path goes in pathlib (expected str, bytes or os.PathLike object). A TypeError naming the argument, and
    the keyword the value belongs to when another argument takes its class; a dict, the config's constructor that
    takes it; with `what` (PATH arguments: 'a path to a CSV'), what to pass."""
    for name, (value, cls, *what) in given.items():
        if (value is None and name not in required) or isinstance(value, cls):
            continue
        got = type(value).__name__
        if what:
            raise TypeError(f"{whose(step)} {name} must be {what[0]} (got {a_type(value)})")
        must = f"{whose(step)} {name} must be {a_name(cls.__name__)} (got {a_type(value)})"
        if isinstance(value, dict) and hasattr(cls, "__dataclass_fields__"):
            raise TypeError(f"{must}; pass {cls.__name__}(**d)")
        other = next((k for k, (_, c, *_) in given.items() if isinstance(value, c)), None)
        raise TypeError(must + (f"; pass the {got} as {other}=" if other else ""))


def path_list(step: str, name: str, value, example: str, what: str = "folders",
              item: str = "a path to a folder", **others: tuple) -> list:
    """A library step's list of paths (build_ensemble's runs, run_runs' paths) as a list: None is none given (the
    step's own line asks for them); one path (its characters are no list of folders) or a value that is no list (a
    number) is a TypeError naming the argument and `example`, the call that fits ({p}: the path given, else a
    placeholder); a generator is read once. Each item is a path (check_arguments: `name[i]` must be `item`), checked
    after the step's `others` arguments (check_arguments' `name=(value, class, what)`)."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{whose(step)} {name} must be a list of {what} (got the path {str(value)!r}); pass "
                        + example.format(p=repr(str(value))))
    try:
        paths = list(value)
    except TypeError:
        raise TypeError(f"{whose(step)} {name} must be a list of {what} (got {a_type(value)}); pass "
                        + example.format(p="'outputs/runs/A'")) from None
    given = {f"{name}[{i}]": (p, PATH, item) for i, p in enumerate(paths)}
    check_arguments(step, required=tuple(given), **others, **given)
    return paths


@functools.lru_cache(maxsize=None)
def _kind(cls, name: str) -> str | None:
    """'int', 'float', 'bool', 'str' for a field declared so (int | None too), 'list' for a list / tuple /
    Sequence, else None (a union of several types, a dict, a config; a type this module cannot resolve included: it
    is then not checked)."""
    try:
        hint = _field_type(cls, name)
    except Exception:       # a name the config's module imports only for type checkers
        return None
    if typing.get_origin(hint) is typing.Union:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else hint
    if hint in (int, float, bool, str):
        return hint.__name__
    if hint in (list, tuple) or typing.get_origin(hint) in (list, tuple, collections.abc.Sequence):
        return "list"
    return None


@functools.lru_cache(maxsize=None)
def _item_type(cls, name: str) -> type | None:
    """A list field's declared item type (Sequence[int], list[float], tuple[str, ...] | None: int, float, str), None
    where it declares none (a bare list) or is no list."""
    if _kind(cls, name) != "list":
        return None
    hint = _field_type(cls, name)
    if typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    return args[0] if len(args) == 1 and isinstance(args[0], type) else None


def _takes_none(cls, name: str) -> bool:
    """Whether a field's declared type has None (str | None: 'not set'); a type this module cannot resolve: yes."""
    try:
        hint = _type_hints(cls)[name]
    except Exception:       # a name the config's module imports only for type checkers
        return True
    return hint is Any or type(None) in typing.get_args(hint)


def _wanted(spec: Spec, kind: str | None) -> str:
    """What a field takes, for a refusal of None: 'one of: a, b', 'a whole number >= 1', 'True or False', 'a string'
    (the kind as _check_scalar names it, ITEM_TAKES); its `off` value first where it declares one: '0 for no limit (a
    whole number >= 0)', "'none' for no TTA" (a text's quotes say its kind)."""
    if spec.off:
        value, means = spec.off
        takes = _wanted(dataclasses.replace(spec, off=()), kind)
        return f"{value!r} for {means}" + (f" ({takes})" if takes not in ("a value", ITEM_TAKES[str]) else "")
    if spec.choices is not None:
        return f"one of: {', '.join(map(str, spec.choices))}" + (" (a list of them)" if kind == "list" else "")
    if spec.lo is not None or spec.hi is not None:
        return f"a {'whole ' if kind == 'int' else ''}number {range_text(spec)}"
    return {"list": "a list", **{k: ITEM_TAKES[t] for k, t in SCALARS.items()}}.get(kind, "a value")


def recorded_nulls(cls, d: dict) -> dict:
    """A step's record `d` (a run's config.yaml, a study's fixed train options) with each null of a field of `cls`
    whose type takes no None and which declares an `off` value read as that value: a Python caller's None passed
    as 'not set' before such a None was refused, the step ran with it as its off value (max_pixels=None: no limit)
    and recorded null, which means now what it meant then. `d` itself where it holds none."""
    table = specs(cls)
    nulls = {name: table[name][1].off[0] for name, value in d.items()
             if value is None and name in table and table[name][1].off and not _takes_none(cls, name)}
    return {**d, **nulls} if nulls else d


def _is_set(cfg: Any, name: str, table: dict) -> bool:
    return getattr(cfg, name) != default_of(table[name][0])


def set_options(cfg: Any, names: typing.Iterable[str] | None = None) -> list[str]:
    """The declared options of `cfg` (of `names`, in their order, when given; else all, in field order) whose value
    is not their default."""
    table = specs(cfg)
    return [n for n in (table if names is None else names) if _is_set(cfg, n, table)]


def _spelling(name: str, spec: Spec, value: Any) -> str:
    """How the command line spells `name` = value: --no-ood for a bool declared "--ood/--no-ood", --loss ce; 'no
    --flag' where no words give it (_words)."""
    return _joined(name, spec, _words(name, spec, value))


def _joined(name: str, spec: Spec, words: list[str] | None) -> str:
    """Command-line words as one text (_spelling's, _typed's), 'no --flag' where none give the value."""
    return " ".join(words) if words is not None else f"no {flag(name, spec)}"


def _words(name: str, spec: Spec, value: Any, quote: Callable[[str], str] | None = None) -> list[str] | None:
    """_spelling's command-line words: ['--no-ood'], ['--loss', 'ce']; None where none give the value (None, an
    empty list, the off form of a bool declared with its on flag only). `quote`: how each value is written
    (typed_text's)."""
    quote = quote or str
    if isinstance(value, bool):
        for decl in spec.flags:
            if "/" in decl:
                on, off = (part.strip() for part in decl.split("/", 1))
                return [on if value else off]
        return [flag(name, spec)] if value else None
    if isinstance(value, list):     # a repeatable option: --tracker a --tracker b
        return [w for v in value for w in (flag(name, spec), quote(str(v)))] or None
    return None if value is None else [flag(name, spec), quote(str(value))]


def as_typed(cfg: Any, names: typing.Iterable[str]) -> str:
    """The command-line form of the fields `names` of `cfg` that act and differ from their defaults, in field order:
    '--face-crop --remove-bg --size 96' ('' when none does)."""
    table = specs(cfg)
    wanted = set(names)
    return typed_text(cfg, [n for n in table if n in wanted and _is_set(cfg, n, table) and acts(cfg, n, table)])


def typed_text(cfg: Any, names: typing.Iterable[str], quote: Callable[[str], str] | None = None) -> str:
    """The command-line form of the fields `names` of `cfg`, in that order, whatever their values (a flag typed at
    its default included): '--seed 3 --stratify label --drop-ages 57,58,59'. `quote`: how each value is written
    (console.sh for a command a user pastes: 'my runs' as one argument); unquoted when None."""
    table = specs(cfg)
    return " ".join(_typed(n, table[n][1], getattr(cfg, n), quote) for n in names)


def _typed(name: str, spec: Spec, value: Any, quote: Callable[[str], str] | None = None) -> str:
    """How the command line spells name = value (cli_words), 'no --flag' where no words give it; `quote`:
    typed_text's."""
    return _joined(name, spec, cli_words(name, spec, value, quote))


def cli_words(name: str, spec: Spec, value: Any, quote: Callable[[str], str] | None = None) -> list[str] | None:
    """The command-line words that give name = value: the value in its command-line form (`to_cli`: a list as 1,1,2,
    not the flag once per item), Typer's own off form of a bool declared without flags included (--no-pretrained);
    None where none do (_words). typed_text's spelling and recorded_flags'. `quote`: how each value is written.
    A None of a field that declares an `off` value is typed as that value (oversample=None: --oversample off)."""
    if value is None and spec.off:
        value = spec.off[0]
    if spec.to_cli is not None and value is not None and not isinstance(value, bool):
        value = spec.to_cli(value)
    if value is False and not spec.flags:
        return ["--no-" + name.replace("_", "-")]
    return _words(name, spec, value, quote)


def reset_inert(cfg: Any, keep: typing.Collection[str] = ()) -> list[str]:
    """Set every field of `cfg` but `keep` whose `needs` are unmet (it would not act) back to its default; returns
    each reset one as typed on a command line (--smoothing 0.05, --no-pretrained), for the line that says so."""
    table = specs(cfg)
    reset = []
    for name, (f, spec) in table.items():
        value = getattr(cfg, name)
        if name not in keep and value != default_of(f) and not needs_met(cfg, name, table):
            reset.append(_typed(name, spec, value))
            setattr(cfg, name, default_of(f))
    return reset


def describe_changes(cls, changed: typing.Iterable[tuple[str, Any, Any]]) -> str:
    """'--epochs 2 -> 1, --no-amp -> --amp' for (field, old, new) triples of config class `cls`, each field named by
    the flag a user types for it."""
    table = specs(cls)
    parts = []
    for name, old, new in changed:
        spec = table[name][1] if name in table else None
        if spec is not None and isinstance(old, bool) and isinstance(new, bool):
            parts.append(f"{_spelling(name, spec, old)} -> {_spelling(name, spec, new)}")
        else:
            parts.append(f"{flag(name, spec)} {old} -> {new}")
    return ", ".join(parts)


def needs_of(spec: Spec) -> list[tuple[str, Any]]:
    """A declaration's `needs` as (field, want) pairs; want None: the field set (true, not None)."""
    return [(need, None) if isinstance(need, str) else tuple(need) for need in spec.needs]


def need_met(value: Any, want: Any, cfg: Any = None) -> bool:
    """Whether a field's value meets one need: want None (set), a tuple (one of its values), a When (its test, given
    the config `cfg` where known) or a value; a list value (a repeatable option: --tracker) meets it when one of its
    items does."""
    if isinstance(want, When):
        return bool(want.test(value, cfg))
    if want is None:
        return bool(value)
    if isinstance(value, list):
        return any(need_met(v, want, cfg) for v in value)
    return value in want if isinstance(want, tuple) else value == want


def needs_met(cfg: Any, name: str, table: dict | None = None) -> bool:
    """Whether every field that field `name` acts through has what it needs in this config."""
    table = table or specs(cfg)
    return name not in table or all(need_met(getattr(cfg, other), want, cfg)
                                    for other, want in needs_of(table[name][1]))


def acts(cfg: Any, name: str, table: dict | None = None) -> bool:
    """Whether field `name` acts in this config: its `needs` met and its alternative not set (a report lists only
    the settings that did something)."""
    table = table or specs(cfg)
    if name not in table:
        return True
    spec = table[name][1]
    return needs_met(cfg, name, table) and not (spec.conflicts and _is_set(cfg, spec.conflicts, table))


def wanted_text(name: str, spec: Spec, want: Any, value: Any = None) -> str:
    """How a need reads: --loss label-smoothing, --mix cutmix, mixup or cutmix-vertical, --ema, --oversample other
    than off."""
    if isinstance(want, When):
        return f"no {flag(name, spec)}" if want.absent else f"{flag(name, spec)} {want.text}"
    if isinstance(want, tuple):
        values = [str(v) for v in want]
        return f"{flag(name, spec)} {', '.join(values[:-1])} or {values[-1]}" if len(values) > 1 else \
            _spelling(name, spec, want[0])
    if want is not None:
        return _spelling(name, spec, want)
    return _spelling(name, spec, True) if isinstance(value, bool) else flag(name, spec)


def check_acts(cfg: Any, name: str, table: dict | None = None, typed: bool = False) -> None:
    """A field set to other than its default where it would be ignored -- its `needs` unmet, or its alternative
    set too -- is refused in one line; `typed`: also at its default value (the flag was typed: check_typed)."""
    table = table or specs(cfg)
    spec = table[name][1]
    if not (spec.needs or spec.conflicts) or not (typed or _is_set(cfg, name, table)):
        return
    named = [(name, spec), *((other, table[other][1]) for other, _ in needs_of(spec))]
    with _keywords_named(*named, *(((spec.conflicts, table[spec.conflicts][1]),) if spec.conflicts else ())):
        _check_acts(cfg, name, spec, table)


def _check_acts(cfg: Any, name: str, spec: Spec, table: dict) -> None:
    """check_acts' checks, for a field set where it may not act."""
    opt = flag(name, spec)
    for other, want in needs_of(spec):
        value, other_spec = getattr(cfg, other), table[other][1]
        if need_met(value, want, cfg):
            continue
        wanted = wanted_text(other, other_spec, want, value)
        has = want.has(value, cfg) if isinstance(want, When) and want.has else _spelling(other, other_spec, value)
        if isinstance(want, When) and want.absent:      # the other option does this one's work itself
            raise UserError(f"{_typed(name, spec, getattr(cfg, name))} does nothing with {has}, {want.text}; drop "
                            f"one of them")
        if isinstance(value, bool) and not value and default_of(table[other][0]) is True:   # the off form was typed
            raise UserError(f"{opt} acts only with {wanted}, which {has} turns off; drop one of {has} and {opt}")
        several = isinstance(want, When) or (isinstance(want, tuple) and len(want) > 1)
        fix = f"set {flag(other, other_spec)}" if several else f"add {wanted}"
        raise UserError(f"{opt} acts only with {wanted}, and this run has {has}; {fix} or drop {opt}")
    if spec.conflicts and _is_set(cfg, spec.conflicts, table):
        other = flag(spec.conflicts, table[spec.conflicts][1])
        raise UserError(f"{opt} and {other} are alternatives (only one is used); give one of them")


def typed_asks(value: Any) -> bool:
    """Whether a value typed on the command line asks for something: an off value (False, None) does not."""
    return value not in (False, None)


def check_typed(cfg: Any, typed: typing.Iterable[str]) -> None:
    """Flags typed on the command line (or named by a Python caller) that would be ignored are refused even when
    their value is the default: `--momentum 0.9 --optimizer adamw` asks for something the run does not do. A typed
    off value (False, None) asks for nothing and passes."""
    table = specs(cfg)
    typed = [name for name in typed if name in table]
    for name in typed:      # a bad value is named first, as check() does
        check_value(name, getattr(cfg, name), table[name][1], takes_none=_takes_none(type(cfg), name))
    for name in typed:
        if typed_asks(getattr(cfg, name)):
            check_acts(cfg, name, table, typed=True)


# ---------------------------------------------------------------------------------------------------------------
# Typer parameters from the declarations
# ---------------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _type_hints(cls) -> dict[str, Any]:
    """A config class's evaluated annotations, once per class: get_type_hints evaluates every field's string
    annotation (`from __future__ import annotations`) each call, and asking it once per field cost the CLI ~2 s of
    start-up (228 calls) before any command ran."""
    return typing.get_type_hints(cls)


def _field_type(cls, name: str) -> Any:
    hint = _type_hints(cls)[name]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return typing.Optional[rest[0]] if len(rest) == 1 and type(None) in args else hint
    return hint


def cli_default(f: dataclasses.Field, spec: Spec) -> Any:
    value = default_of(f)
    return spec.to_cli(value) if spec.to_cli is not None and value is not None else value


def help_text(spec: Spec) -> str:
    text = spec.help
    if spec.lo is not None or spec.hi is not None:
        text += f" \\[{range_text(spec)}]"     # escaped: rich markup would take [between 0 and 1] for a tag
    return text


def cli_fields(cls, only: typing.Iterable[str] | None = None) -> list[str]:
    """The fields of a config class offered on a command line (`only`: a command that takes a subset)."""
    names = [n for n, (_, spec) in specs(cls).items() if spec.cli]
    if only is None:
        return names
    only = list(only)
    unknown = set(only) - set(names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no CLI option(s) {sorted(unknown)}")
    return [n for n in names if n in only]


def cli_parameters(cls, skip: typing.Iterable[str] = (), only: typing.Iterable[str] | None = None,
                   command: str | None = None) -> list[inspect.Parameter]:
    """Keyword-only Typer parameters (typing.Annotated + typer.Option) for the CLI fields of a config class; each
    default is the dataclass default (through `to_cli`), each choice list and range comes from the declaration, its
    help and none as `command` ("tune") says them (for_command)."""
    import typer
    params = []
    table = specs(cls)
    for name in cli_fields(cls, only):
        f, spec = table[name]
        if name in skip:
            continue
        spec = for_command(spec, command)
        typ = spec.cli_type if spec.cli_type is not None else _field_type(cls, name)
        default = cli_default(f, spec)
        kw: dict[str, Any] = {"help": help_text(spec), "rich_help_panel": spec.panel}
        if spec.choices is not None:
            kw["metavar"] = "[" + "|".join(map(str, spec.choices)) + "]"
        if default is None:
            kw["show_default"] = spec.none if spec.none else False
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=typing.Annotated[typ, typer.Option(*spec.flags, **kw)]))
    return params


@dataclass
class Given:
    """What a command received for one config class: `values` (every CLI field, converted to the field's form) and
    `given` (the names typed on the command line; the rest hold the dataclass defaults)."""
    cls: type
    values: dict
    given: set

    def explicit(self) -> dict:
        """Only the values typed on the command line (what overrides a --config / --resume file)."""
        return {k: v for k, v in self.values.items() if k in self.given}

    def build(self, **extra):
        """The config, checked (its own __post_init__) and with its typed flags that would not act refused."""
        cfg = self.cls(**self.values, **extra)
        check_typed(cfg, self.given)
        return cfg

    def keywords(self) -> dict:
        """The values as keywords of a step's library function that takes its options one by one
        (run_predict(**...)), checked as build() checks them first."""
        self.build()
        return dict(self.values)


def from_cli(cls, kwargs: dict, given: set, only: typing.Iterable[str] | None = None) -> Given:
    """The values a command received for the CLI fields of `cls` (converted by `from_cli`; an option left unset, None
    on the command line, is the field's default); kwargs is not changed."""
    table = specs(cls)
    values = {}
    for name in cli_fields(cls, only):
        if name in kwargs:
            f, spec = table[name]
            value = kwargs[name]
            if value is None:
                values[name] = default_of(f)
            else:
                values[name] = spec.from_cli(value) if spec.from_cli is not None else value
    return Given(cls, values, {n for n in given if n in values})
