"""clean's options (CleanConfig: defaults, choices, ranges, --help panels) and the names they choose among."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from imgcls.clean.names import ANN_AUTO_MIN, ANN_MODES, OOD_METHODS, OOD_THRESHOLDS, UNDERSAMPLE_METHODS
from imgcls.device import device_option
from imgcls.errors import UserError
from imgcls.image_options import max_pixels_option
from imgcls.link_options import (CACHE_DIR_NONE, DEFAULT_EMBEDDER, DEFAULT_EMBED_SIZE, dup_candidates_option,
                                 dup_method_option, dup_threshold_option, embed_precision_option)
from imgcls.options import check, option, seed_option
from imgcls.pipeline import PIPELINE

if TYPE_CHECKING:
    from imgcls.links import NearDuplicates

# Defaults chosen on openclipart_dirty (bench/clean_quality.py, docs/BENCHMARKS.md); the near-duplicate definition's
# are imgcls.link_options', the detectors', candidate searches' and undersamplers' imgcls.clean.names'
DEFAULT_OOD_METHOD = "photo-style"
DEFAULT_OUT = dict(PIPELINE)["clean"]
MATERIALIZE = ("link", "copy")
CONFLICT_POLICIES = ("majority-knn", "majority", "majority-ties", "all", "drop")
DUPLICATE_MODES = ("link", "drop")
DEFAULT_OOD_MAX_SHARE = 0.2       # a detector flagging more than this share of the set stops the run (--force)
# ... or more than this share of one class: a class the detector takes for out of domain is more likely a look it
# does not know than polluted data (a 454-image Fashion-MNIST: all 20 Trouser flagged; the dirty Open Clip Art's most
# polluted class is 24% photos)
OOD_MAX_CLASS_SHARE = 0.5
NEAR = ("dedup", "near_dup")       # the fields that switch the near-duplicate search on


def _per_method(table: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in table.items())


DUPS, OOD, SAMPLING, EMBED, RUNTIME = "Duplicates", "Out of domain", "Undersampling", "Embeddings", "Runtime"


@dataclass
class CleanConfig:
    """Every option of `imgcls clean` but the input / output paths (imgcls.options: default, choices, range, help)."""
    dedup: bool = option(True, panel=DUPS, flags=("--dedup/--no-dedup",), help="Exact + near duplicate stage.")
    near_dup: bool = option(True, panel=DUPS, flags=("--near-dup/--exact-only",),
                            help="Near duplicates (embeddings) besides exact (sha256) ones.")
    dup_method: str = dup_method_option(DUPS, NEAR)
    dup_threshold: float | None = dup_threshold_option(DUPS, NEAR)
    dup_candidates: float = dup_candidates_option(DUPS, NEAR)
    ann: str = option("auto", panel=DUPS, choices=ANN_MODES, needs=NEAR,
                      help=f"Candidate search: a FAISS index (on; the `ann` extra), the exact blockwise search (off), "
                           f"or the index from {ANN_AUTO_MIN} images when FAISS is installed (auto).")
    duplicates: str = option("link", panel=DUPS, choices=DUPLICATE_MODES, needs=("dedup",),
                             help="What a duplicate group becomes: link (every member kept, the group named in "
                                  "dup_group so split and train keep it on one side) or drop (one member kept).")
    conflicts: str = option("majority-knn", panel=DUPS, choices=CONFLICT_POLICIES, needs=("dedup",),
                            help="Duplicate groups spanning labels, which labels' members stay: majority-knn (the "
                                 "label most members carry; on a tie each tied label that one of the group's 10 "
                                 "nearest other images carries, none if none does), majority (none on a tie), "
                                 "majority-ties (every label tied for most), all (every label), drop (none).")
    ood: bool = option(True, panel=OOD, flags=("--ood/--no-ood",), help="Out-of-domain stage.")
    ood_method: str = option(DEFAULT_OOD_METHOD, panel=OOD, choices=OOD_METHODS, needs=("ood",),
                             help="Out-of-domain detector (README: what each measures).")
    ood_threshold: float | None = option(None, panel=OOD, needs=("ood",), conflicts="ood_contamination",
                                         none=_per_method(OOD_THRESHOLDS),
                                         help="Score at or above which an image is out of domain.")
    ood_contamination: float | None = option(None, panel=OOD, lo=0, hi=1, lo_open=True, hi_open=True,
                                             needs=("ood",),
                                             help="Instead of a threshold: flag this share of images.")
    ood_max_share: float = option(DEFAULT_OOD_MAX_SHARE, panel=OOD, lo=0, hi=1, needs=("ood",),
                                  help="A threshold that flags more than this share of the images stops the run "
                                       "(asks for --ood-contamination or --force).")
    force: bool = option(False, panel=OOD, flags=("--force",), needs=("ood",),
                         help="Accept an out-of-domain result that flags more than --ood-max-share, or more "
                              "than half of a class.")
    undersample: str | None = option(None, panel=SAMPLING, choices=UNDERSAMPLE_METHODS, none="off: every row kept",
                                     help="Keep at most --max-per-class rows per class.")
    max_per_class: int | None = option(None, panel=SAMPLING, lo=1, needs=("undersample",),
                                       help="Cap per class for --undersample.")
    embedder: str = option(DEFAULT_EMBEDDER, panel=EMBED, help="timm model for embeddings.")
    embedder_weights: str | None = option(None, panel=EMBED, cli_type=Optional[Path], from_cli=str,
                                          help="Weight file for --embedder.")
    embed_size: int = option(DEFAULT_EMBED_SIZE, panel=EMBED, lo=16, hi=2048, help="Embedding input size (px).")
    embed_precision: str = embed_precision_option(EMBED)
    device: str = device_option(RUNTIME)
    seed: int = seed_option(RUNTIME)
    max_pixels: int = max_pixels_option()
    cache_dir: str | None = option(None, panel=EMBED, cli_type=Optional[Path], from_cli=str, help="Embedding, verified-pair, thumbnail-summary and photo-"
                                                         f"feature cache folder (default: {CACHE_DIR_NONE}).")

    materialize: str | None = option(None, panel="Output", choices=MATERIALIZE,
                                     help="Kept images as an ImageFolder under OUT/images: hard links or copies.")

    def validate(self) -> None:
        """Choices and ranges (imgcls.options.check) and the options that need each other; before any scan."""
        check(self)
        from imgcls.clean.ann import check_faiss
        if self.dedup and self.near_dup:
            check_faiss(self.ann)
        if self.undersample and not self.max_per_class:
            raise UserError("--undersample needs --max-per-class N")

    @property
    def needs_embeddings(self) -> bool:
        """The duplicate stage embeds the images: the near-duplicate search, or --conflicts majority-knn's votes."""
        return bool(self.embedder_weights or (self.dedup and (self.near_dup or self.conflicts == "majority-knn")))

    def near_duplicates(self) -> NearDuplicates:
        """The near-duplicate definition these options choose (shared with split)."""
        from imgcls.links import NearDuplicates       # numpy: the step's, not the command line's
        return NearDuplicates(self.dup_method, self.dup_threshold, self.dup_candidates, self.embedder,
                                    self.embedder_weights, "--embedder-weights", self.embed_size, self.device,
                                    self.cache_dir, self.ann, model_flag="--embedder", precision=self.embed_precision,
                                    max_pixels=self.max_pixels)
