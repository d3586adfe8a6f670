"""The mask competition's profile vocabulary -- the folder name pattern, the mask / gender classes, the default age
bands and the heads -- with only the standard library, so the options that name them (--age-bands, --head-columns,
split's profile attributes) are declared without numpy / pandas. imgcls.profiles computes with them (and re-exports
them)."""
from __future__ import annotations

import numbers
import re
from typing import Any, Callable

from imgcls.errors import UserError

# Mask competition: root/<id>_<gender>_<race>_<age>/<mask1..5|incorrect_mask|normal>.<ext>
PROFILE_DIR = re.compile(r"^(?P<id>[^_]+)_(?P<gender>male|female)_(?P<race>[^_]+)_(?P<age>\d+)$", re.IGNORECASE)
MASK_CLASSES = ("wear", "incorrect", "not_wear")      # mask column values 0, 1, 2
GENDER_CLASSES = ("male", "female")                     # gender column values 0, 1
DEFAULT_AGE_BANDS = (30, 60)                            # edges: <30, 30-59, >=60
PROFILE_HEADS = ("mask", "gender", "age_band")          # ProfileScheme.HEADS: the label is their classes' product


def edges_fault(edges) -> str:
    """What is wrong with age band edges, as their refusals say it ('' for nothing): whole ages of 0 or more in
    increasing order, at least one. The one rule of band edges: the options' (age_edges) and a checkpoint's recorded
    age_bands (model_meta.ModelMeta.from_dict), each with its own fix."""
    edges = list(edges)
    if not edges:
        return "names no age"
    if not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in edges):
        return "is not whole ages"
    if min(edges) < 0:
        return "is not ages of 0 or more"
    return "" if edges == sorted(set(edges)) else "is not increasing ages"


def age_edges(flag_name: str, example: str = "30,60") -> Callable[[Any], None]:
    """The check of an option of age band edges (--age-bands, --relabel-age; Spec.validator): whole ages of 0 or more
    in increasing order, at least one; its refusal gives `example` (the flag's parser's, options.int_list). A Python
    caller's empty list broke eda and split with an IndexError, and edges out of order (60,30) named the bands '<60',
    '60-29', '>=30' unsaid. A list or tuple's items are whole numbers here: options.check's item rule refuses a
    text or a float first (age_bands=['30', '60'], [30.0, 60.0]: "holds '30', not a whole number"); only another
    sequence, which that rule does not read (a numpy array), brings them here, said as not whole ages."""
    def check(value: Any) -> None:
        edges = list(value)
        what = edges_fault(edges)       # np.array([30.0, 60.0]) is increasing: said as not whole, not as out of order
        if not what:
            return
        # text shown quoted (np.array(['30', '60'])): not whole ages, as 30,60 would read; a numpy text as the plain
        # one ('30', not np.str_('30'))
        given = ",".join(repr(str(e)) if isinstance(e, str) else str(e) for e in edges)
        python = f"{flag_name.lstrip('-').replace('-', '_')}=[{example.replace(',', ', ')}]"
        raise UserError(f"{flag_name}{' ' + given if edges else ''} {what}: give the band edges in increasing order, "
                        f"e.g. {example} (Python: {python})")
    return check
