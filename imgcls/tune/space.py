"""The search space of `imgcls tune`: a YAML mapping of `imgcls train` options to Optuna distributions.

    lr: {log_uniform: [1e-4, 3e-3]}
    optimizer: {choice: [adamw, sgd]}
    epochs: {int: [2, 6]}

Every key is a TrainConfig field; every value is checked (type, range, and each candidate against
TrainConfig.validate) when the file is read, so a typo fails in a second with one line naming the key.

The space is conditional, define-by-run: a key that acts only with another option's value (its declaration's
`needs`: smoothing needs loss label-smoothing, focal_gamma loss focal, mix_prob a mix, ...) is drawn only in the
trials where the fixed options or the values drawn before it meet that need, and keeps its default in the others;
a fixed option (`tune --smoothing 0.2`) likewise acts in the trials that meet its need and keeps its default in the
rest (`trial_options`)."""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from imgcls.errors import UserError
from imgcls.options import (SCALARS, When, check_acts, check_typed, default_of, flag, item_fits, need_met,
                            needs_met, needs_of, plain_value, python_too, set_options, specs, typed_asks, wanted_text,
                            whole_number)
from imgcls.train.config import TRAIN_OPTIONS, TrainConfig

OPTIONS = specs(TrainConfig)

DEFAULT_SPACE = Path(__file__).with_name("default_space.yaml")
SHOW_SPACE = python_too("imgcls tune --show-space", "print(imgcls.tune.space.default_space_text())")
KINDS = ("choice", "uniform", "log_uniform", "int", "log_int")
# TrainConfig fields a search must not vary: where the data / outputs are, the hardware, or the validation rows
# themselves (a search over them would compare scores measured on different rows)
FIXED = {"src": "the data", "out": "the output folder", "name": "trial folders are named by tune",
         "device": "hardware", "workers": "hardware", "cache": "hardware", "compile": "speed only",
         "gpu_aug": "speed only", "plots": "figures only", "metric": "every trial's is the study's --metric",
         "channels_last": "speed only", "folds": "the validation rows", "val_split": "the validation rows",
         "seed": "the validation rows", "deterministic": "speed only", "weights": "a file path",
         "head_columns": "the task", "heads": "the task", "max_pixels": "which images are read (the validation rows)",
         "crop_from": "the validation images: centre crops of images resized to crop_from x img_size"}

# train's class sampler, a space key and a TrainConfig field, which no tune flag sets (tune's --sampler is Optuna's):
# named as the Python caller's TrainConfig(sampler=) where a message would say --sampler
TRAIN_SAMPLER = "sampler"
TRAIN_SAMPLER_SET = "train's sampler (TrainConfig(sampler=); tune's --sampler is Optuna's)"


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    values: tuple     # choice: the values; ranges: (low, high) or (low, high, step)

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind in ("uniform", "log_uniform"):
            return trial.suggest_float(self.name, self.values[0], self.values[1], log=self.kind == "log_uniform")
        step = self.values[2] if len(self.values) > 2 else 1
        return trial.suggest_int(self.name, self.values[0], self.values[1], step=step, log=self.kind == "log_int")

    def grid(self) -> list:
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            step = self.values[2] if len(self.values) > 2 else 1
            return list(range(self.values[0], self.values[1] + 1, step))
        raise UserError(f"--sampler grid needs every space key to be a choice or an int range; "
                        f"'{self.name}' is {self.kind}")

    def as_yaml(self) -> dict:
        return {self.kind: list(self.values)}

    def candidates(self) -> list:
        """The values checked when the space is read: every choice, a range's ends."""
        return list(self.values) if self.kind == "choice" else list(self.values[:2])


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    source: str     # the file it was read from

    def suggest(self, trial, base: TrainConfig | None = None) -> dict:
        """One trial's values, define-by-run: each key in `ordered()`, a key whose needs neither the fixed options
        `base` nor the values drawn before it meet (smoothing in a trial whose loss is ce) is not drawn."""
        base = base or TrainConfig()
        values = {}
        for p in self.ordered():
            if needs_met(dataclasses.replace(base, **values), p.name, OPTIONS):
                values[p.name] = p.suggest(trial)
        return values

    def ordered(self) -> list[Param]:
        """The keys in the file's order, each after the keys its needs name (loss before smoothing)."""
        names, placed, out = self.names(), set(), []
        pending = list(self.params)
        while pending:
            ready = next((p for p in pending if all(other in placed or other not in names
                                                    for other, _ in needs_of(OPTIONS[p.name][1]))), pending[0])
            out.append(ready)
            placed.add(ready.name)
            pending.remove(ready)
        return out

    def grid(self) -> dict:
        """Optuna's GridSampler's search space: every combination of the keys' values (a key a trial does not draw
        makes its combinations repeat a run: `grid_runs`)."""
        return {p.name: p.grid() for p in self.params}

    def conditional(self) -> list[str]:
        """The keys that act only with another key's value (drawn in the trials that choose it)."""
        names = self.names()
        return [p.name for p in self.params if any(other in names for other, _ in needs_of(OPTIONS[p.name][1]))]

    def grid_runs(self, base: TrainConfig | None = None) -> int:
        """How many different runs the grid's combinations make (fewer when a key acts only with another's value)."""
        base = base or TrainConfig()
        ordered = self.ordered()
        runs = set()
        for combo in itertools.product(*(p.grid() for p in ordered)):
            values = {}
            for p, v in zip(ordered, combo):
                if needs_met(dataclasses.replace(base, **values), p.name, OPTIONS):
                    values[p.name] = v
            runs.add(tuple(sorted(values.items(), key=lambda kv: kv[0])))
        return len(runs)

    def as_dict(self) -> dict:
        return {p.name: p.as_yaml() for p in self.params}

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def drawn(self) -> dict:
        """Each key with the values checked when the space is read (Param.candidates): train's `searched`."""
        return {p.name: p.candidates() for p in self.params}


def default_space_text() -> str:
    return DEFAULT_SPACE.read_text(encoding="utf-8")


def load_space(path: str | Path | None, base: TrainConfig | None = None, typed=()) -> Space:
    """Read and check a space file (None: the default space shipped with imgcls). `base`: the fixed options every
    trial starts from; each candidate value is checked together with them (`typed`: those typed, parse_space)."""
    import yaml
    path = DEFAULT_SPACE if path is None else Path(path)
    if path.is_dir():
        raise UserError(f"--space {path} is a folder, not a YAML file; give the space file ({SHOW_SPACE} prints "
                        f"the default one to start from)")
    if not path.is_file():
        raise UserError(f"--space {path} does not exist; write a YAML space: {SHOW_SPACE} prints the default one")
    try:
        from imgcls.outputs import yaml_load
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"--space {path} is not valid YAML{where}; {SHOW_SPACE} prints a valid one") from None
    return parse_space(data, base, source=str(path) if path != DEFAULT_SPACE else "the default space", typed=typed)


def trial_options(base: TrainConfig, values: dict) -> dict:
    """A trial's train options: the fixed ones `base` with the space's `values`; a fixed option whose needs these
    values leave unmet (--smoothing in a trial whose loss is ce) keeps its default, as in a run that never set it."""
    cfg = dataclasses.replace(base, **values)
    d = cfg.to_dict()
    for name, (f, _) in OPTIONS.items():
        if name not in values and not needs_met(cfg, name, OPTIONS):
            d[name] = default_of(f)
    return d


def _chooses(p: Param, want) -> list:
    """The values of space key `p` that meet a need (imgcls.options.need_met)."""
    if p.kind == "choice":
        return [v for v in p.values if need_met(v, want)]
    low, high = p.values[0], p.values[1]
    if want is None or isinstance(want, When):        # set (non-zero), or what the need's test accepts
        return [v for v in (high, low) if need_met(v, want)]
    return [w for w in (want if isinstance(want, tuple) else (want,))
            if isinstance(w, (int, float)) and not isinstance(w, bool) and low <= w <= high]


def _witness(name: str, base: TrainConfig, params: dict, seen: tuple = ()) -> dict:
    """Values of space keys with which option `name` acts (each need met by the fixed options or by a value the
    needed key can take, and that key's own needs likewise); one line when no trial can meet them."""
    values = {}
    for other, want in needs_of(OPTIONS[name][1]):
        if other in params and other not in seen:
            chosen = _chooses(params[other], want)
            if not chosen:
                spec = OPTIONS[name][1]
                who = f"space key '{name}'" if name in params else flag(name, spec)
                what = ("one of them" if isinstance(want, tuple) else "true" if want is None else
                        f"a value {want}" if isinstance(want, When) else want)
                raise UserError(f"{who} acts only with {wanted_text(other, OPTIONS[other][1], want)}, which space "
                                f"key '{other}' never takes; add {what} to '{other}' or drop {who}")
            values.update(_witness(other, base, params, seen + (name,)))
            values[other] = chosen[0]
    return values


def parse_space(data, base: TrainConfig | None = None, source: str = "the space", typed=()) -> Space:
    """The space of `data` (a mapping read from YAML), checked with the fixed options `base` (those checked too: a
    fixed option whose needs a space key meets, such as --smoothing with a space over loss, acts in those trials;
    one of the `typed` names that acts in no trial is refused even at its default: options.check_typed)."""
    if not isinstance(data, dict) or not data:
        raise UserError(f"{source} must map imgcls train options to ranges, e.g. lr: {{log_uniform: [1e-4, 3e-3]}}")
    base = base or TrainConfig()
    types = {n: str(f.type) for n, (f, _) in specs(TrainConfig).items()}     # the options: not _config (read_from's)
    params = []
    for key, spec in data.items():
        key = str(key)
        if key not in types:
            close = difflib.get_close_matches(key, list(types), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"space key '{key}' is not an imgcls train option{hint}; see {TRAIN_OPTIONS}")
        if key in TrainConfig.RECORDS:      # set by every run anew: a value drawn for it would do nothing
            raise UserError(f"space key '{key}' cannot be searched: train records it (how a run ran), it is no "
                            f"option; drop it from the space ({TRAIN_OPTIONS} lists the options)")
        if key in FIXED:
            raise UserError(f"space key '{key}' cannot be searched ({FIXED[key]}); "
                            + python_too("set it on the command line or in --config",
                                         "in TuneConfig's train=TrainConfig(...)"))
        params.append(_param(key, spec, types[key]))
    by_name = {p.name: p for p in params}
    varied = sorted(set(typed) & set(by_name))      # a typed value every trial's draw would replace: it acts nowhere
    if varied:
        one = len(varied) == 1
        # train's sampler has no tune flag (tune's --sampler is Optuna's): only a Python caller's TrainConfig sets it
        python = TRAIN_SAMPLER in varied
        names = ", ".join(TRAIN_SAMPLER_SET if n == TRAIN_SAMPLER else flag(n) for n in varied)
        fix = (f"leave {'it at its default' if one else 'them at their defaults'}" if python else "drop the flag")
        raise UserError(f"{names} {'set' if python else 'typed'}, but {source} varies {'it' if one else 'them'}: "
                        f"each trial draws its own value; {fix}, or give a --space without {', '.join(varied)} to "
                        f"fix {'it' if one else 'them'}")
    later = set()       # fixed options that act only in the trials whose space values meet their needs
    typed = set(typed) - set(by_name)
    not_default = set(set_options(base))
    for name, (_, spec) in OPTIONS.items():
        given = name in not_default or (name in typed and typed_asks(getattr(base, name)))
        if (name not in by_name and given and not needs_met(base, name, OPTIONS)
                and any(other in by_name for other, _ in needs_of(spec))):
            check_acts(dataclasses.replace(base, **_witness(name, base, by_name)), name, OPTIONS, typed=True)
            later.add(name)
    base.validate(acting_later=later)
    check_typed(base, typed - later)
    for p in params:    # each candidate with the fixed options and what it needs: TrainConfig's checks, named by key
        need = _witness(p.name, base, by_name)
        for v in p.candidates():
            try:
                TrainConfig.from_dict(trial_options(base, {**need, p.name: v})).validate()
            except UserError as e:
                raise UserError(f"space key '{p.name}': {e}") from None
    return Space(tuple(params), source)


def _param(key: str, spec, ftype: str) -> Param:
    example = "e.g. {choice: [a, b]} or {log_uniform: [1e-4, 1e-2]}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise UserError(f"space key '{key}': give one of {', '.join(KINDS)}, {example}")
    kind, values = next(iter(spec.items()))
    if kind not in KINDS:
        raise UserError(f"space key '{key}': unknown kind '{kind}'; use one of {', '.join(KINDS)}")
    if not isinstance(values, list) or not values:
        raise UserError(f"space key '{key}': {kind} takes a non-empty list, {example}")
    # a notebook's numbers (np.arange's np.int64, np.float64, np.bool_) as the plain values they are: checked by
    # options' one rule (whole_number) and recorded plain in the study's space
    values = [plain_value(v) for v in values]
    base_type = ftype.replace(" | None", "").strip()
    if kind == "choice":
        if len(set(map(repr, values))) != len(values):
            raise UserError(f"space key '{key}': the choice lists a value twice")
        for v in values:
            if not isinstance(v, (str, int, float, bool)):
                raise UserError(f"space key '{key}': choice values must be plain values (got {v!r})")
            _check_type(key, v, base_type)
    else:
        if base_type not in ("int", "float"):
            raise UserError(f"space key '{key}' is a {base_type} option; give it as {{choice: [...]}}")
        if kind in ("int", "log_int"):
            if base_type != "int":
                raise UserError(f"space key '{key}' is a float option; use uniform or log_uniform")
            if len(values) not in (2, 3) or not all(whole_number(v) is not None for v in values):
                raise UserError(f"space key '{key}': {kind} takes [low, high] or [low, high, step] integers")
            if len(values) == 3 and (values[2] < 1 or kind == "log_int"):
                raise UserError(f"space key '{key}': the step must be >= 1 (and log_int takes no step)")
        else:
            if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           and math.isfinite(v) for v in values):
                raise UserError(f"space key '{key}': {kind} takes [low, high] numbers")
            if base_type == "int":
                raise UserError(f"space key '{key}' is an integer option; use int or log_int")
            values = [float(v) for v in values]
        low, high = values[0], values[1]
        if not low < high:
            raise UserError(f"space key '{key}': low must be below high (got [{low}, {high}])")
        if kind.startswith("log") and low <= 0:
            raise UserError(f"space key '{key}': a log range needs low > 0 (got {low})")
    return Param(key, kind, tuple(values))


def _check_type(key: str, v, base_type: str) -> None:
    """One choice value of space key `key`, of declared type `base_type` ('int', 'str', ...; a list or another type:
    not checked), by options' scalar rule (item_fits: a whole number for an int, a number for a float, ...), in
    tune's words. As that rule does, an option whose declaration checks its value itself with a validator is left to
    it: --oversample takes a number of images per class (200) as well as a word (median), and a space that TrainConfig
    accepts is accepted. An option with choices keeps the type test: a value of another type is none of its
    choices."""
    spec = OPTIONS[key][1]
    if spec.validator is not None and spec.choices is None:
        try:
            spec.validator(v)
        except UserError as e:
            raise UserError(f"space key '{key}': {e}") from None
        return
    typ = SCALARS.get(base_type)
    if typ is not None and not item_fits(v, typ):
        raise UserError(f"space key '{key}' takes {base_type} values (got {v!r})")
