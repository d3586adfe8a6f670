"""Minority oversampling: the one target formula, shared by train time (`train --oversample`) and offline
(`preprocess --oversample`, imgcls.preprocess.oversample).

A class with n images is brought to min(TARGET, n x MAX_FACTOR) samples (never fewer than n): TARGET is `median`
(the median class count, rounded down), `max` (the largest class count) or a number. The factor bounds how often one
image is repeated, so a class of 3 images does not become 300 copies of the same 3 pictures.

Only the standard library, numpy and imgcls.options are imported here (options read `parse_target` at --help
time).
"""
from __future__ import annotations

from typing import Mapping

from imgcls.errors import UserError
from imgcls.options import When

TARGET_WORDS = ("median", "max")
OFF = "off"
AUTO = "auto"        # train's default: median unless another rebalancing option is on (TrainConfig.oversample_target)
DEFAULT_MAX_FACTOR = 4.0


def parse_target(value) -> str | int | None:
    """`median` | `max` | a positive integer (as text or int); None / '' / `off` = no oversampling. One line
    otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", OFF)):
        return None
    text = str(value).strip().lower()
    if text in TARGET_WORDS:
        return text
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or n < 1 or isinstance(value, bool):
        raise UserError(f"--oversample takes median, max, off or a positive number of images per class (got "
                        f"'{value}')")
    return n


def oversamples(value) -> bool:
    """Whether an --oversample value asks for oversampling (a target; not off, empty or a bad spelling)."""
    try:
        return parse_target(value) is not None
    except UserError:
        return False


# the need of the options that act only when --oversample has a target (imgcls.options.When)
TARGET_SET = When(lambda value, _cfg: oversamples(value), "other than off")


def check_target(value) -> None:
    """The option validator (imgcls.options Spec.validator)."""
    parse_target(value)


def class_targets(counts: Mapping[str, int], target, max_factor: float = DEFAULT_MAX_FACTOR) -> dict[str, int]:
    """Samples per class after oversampling: max(n, min(T, floor(n x max_factor))) with T from `target`."""
    t = parse_target(target)
    if max_factor < 1:
        raise UserError(f"--oversample-max-factor must be >= 1 (got {max_factor})")
    counts = {k: int(v) for k, v in counts.items() if int(v) > 0}
    if t is None or not counts:
        return dict(counts)
    values = sorted(counts.values())
    if t == "median":
        m = len(values)
        goal = values[m // 2] if m % 2 else (values[m // 2 - 1] + values[m // 2]) // 2
    elif t == "max":
        goal = values[-1]
    else:
        goal = int(t)
    return {k: max(n, min(goal, int(n * max_factor))) for k, n in counts.items()}


def extra_copies(counts: Mapping[str, int], target, max_factor: float = DEFAULT_MAX_FACTOR) -> dict[str, int]:
    """Copies to add per class (class_targets minus the count); 0 for classes at or above the target."""
    goal = class_targets(counts, target, max_factor)
    return {k: goal[k] - int(counts[k]) for k in goal}
