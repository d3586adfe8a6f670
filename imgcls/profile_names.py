"""The mask competition's profile vocabulary -- the folder name pattern, the mask / gender classes, the default age
bands and the heads -- with only the standard library, so the options that name them (--age-bands, --head-columns,
split's profile attributes) are declared without numpy / pandas. imgcls.profiles computes with them (and re-exports
them)."""
from __future__ import annotations

import re

# Mask competition: root/<id>_<gender>_<race>_<age>/<mask1..5|incorrect_mask|normal>.<ext>
PROFILE_DIR = re.compile(r"^(?P<id>[^_]+)_(?P<gender>male|female)_(?P<race>[^_]+)_(?P<age>\d+)$", re.IGNORECASE)
MASK_CLASSES = ("wear", "incorrect", "not_wear")      # mask column values 0, 1, 2
GENDER_CLASSES = ("male", "female")                     # gender column values 0, 1
DEFAULT_AGE_BANDS = (30, 60)                            # edges: <30, 30-59, >=60
PROFILE_HEADS = ("mask", "gender", "age_band")          # ProfileScheme.HEADS: the label is their classes' product
