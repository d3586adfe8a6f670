"""The near-duplicate definition's options, declared once for clean and split (--dup-method, --dup-threshold,
--dup-candidates, --embed-precision) and their defaults, with only the standard library and imgcls.options, so a
command line is built without numpy / pandas. imgcls.links finds the pairs (and re-exports these)."""
from __future__ import annotations

from imgcls.options import option

DUP_METHODS = ("verified", "embedding")
DEFAULT_DUP_THRESHOLDS = {"verified": 0.98, "embedding": 0.90}   # verified correlation / embedding cosine
DEFAULT_DUP_CANDIDATES = 0.80     # embedding cosine at or above which a pair is verified (verified method)
DEFAULT_EMBEDDER = "tf_efficientnet_lite0"
DEFAULT_EMBED_SIZE = 160
# where the content-keyed caches live without --cache-dir (imgcls.embed.cache_folder), as clean's and split's help
# and split's report say it
CACHE_DIR_NONE = "$IMGCLS_CACHE/embeddings, else ~/.cache/imgcls/embeddings"


def dup_method_option(panel: str, needs: tuple = ()):
    """--dup-method, declared once for clean and split (imgcls.options); `needs`: the step's fields that switch
    the near-duplicate search on."""
    return option("verified", panel=panel, choices=DUP_METHODS, needs=needs,
                  help="Near-duplicate definition: verified (embedding candidates checked pixel by pixel on aligned "
                       "thumbnails: crop, flip, brightness) or embedding (embedding cosine alone).")


def dup_threshold_option(panel: str, needs: tuple = ()):
    """--dup-threshold: its default per method is printed from DEFAULT_DUP_THRESHOLDS (help once said 0.95)."""
    return option(None, panel=panel, lo=0, hi=1, needs=needs,
                  none=", ".join(f"{k} {v}" for k, v in DEFAULT_DUP_THRESHOLDS.items()),
                  help="Score at or above which two images are near duplicates: verified correlation or embedding "
                       "cosine.")


def embed_precision_option(panel: str, needs: tuple = ()):
    """--embed-precision, declared once for clean and split (they share the embedding cache, one file per
    precision)."""
    from imgcls.device import PRECISIONS
    return option("auto", panel=panel, choices=PRECISIONS, needs=needs,
                  help="Embedding pass arithmetic: auto = bf16 on a CPU with AMX (faster; cosines within ~0.01 of "
                       "fp32), else fp32.")


def dup_candidates_option(panel: str, needs: tuple = ()):
    return option(DEFAULT_DUP_CANDIDATES, panel=panel, lo=0, hi=1, needs=needs + (("dup_method", "verified"),),
                  help="Embedding cosine at or above which a pair is verified (--dup-method verified).")
