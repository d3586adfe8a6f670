"""`imgcls clean`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import (AgeBands, Csv, Device, GroupCol, LabelCol, Layout, PathCol, Quiet, Seed, Src, Workers,
                               command, default_workers, layout_options)


@command("clean", epilog="Example: imgcls clean data/raw --out data/clean --dup-threshold 0.97 "
                         "--undersample nearmiss --max-per-class 500")
def clean(src: Src,
          out: Annotated[Path, typer.Option(help="Output folder (manifest.csv, report.html).")] = Path("data/clean"),
          dedup: Annotated[bool, typer.Option("--dedup/--no-dedup", help="Exact + near duplicate stage.")] = True,
          near_dup: Annotated[bool, typer.Option("--near-dup/--exact-only", help="Near duplicates (embeddings) "
                                                 "besides exact (sha256) ones.")] = True,
          dup_method: Annotated[str, typer.Option(help="verified: embedding candidates checked pixel by pixel on "
                                                  "aligned thumbnails (crop, flip, brightness); embedding: "
                                                  "embedding cosine alone.")] = "verified",
          dup_threshold: Annotated[Optional[float], typer.Option(help="Score at or above which two images are near "
                                                                 "duplicates: verified correlation (default 0.95) "
                                                                 "or embedding cosine (default 0.90).")] = None,
          dup_candidates: Annotated[float, typer.Option(help="Embedding cosine at or above which a pair is "
                                                        "verified (--dup-method verified).")] = 0.80,
          conflicts: Annotated[str, typer.Option(help="Duplicate groups spanning labels: report (keep one, flag), "
                                                 "drop (drop all), keep-first (keep one per label).")] = "report",
          ood: Annotated[bool, typer.Option("--ood/--no-ood", help="Out-of-domain stage.")] = True,
          ood_method: Annotated[str, typer.Option(help="photo-style | photo-embedding | photo-features | "
                                                  "embedding-knn | combined | pixels-agglomerative | "
                                                  "pca-dbscan.")] = "photo-style",
          ood_threshold: Annotated[Optional[float], typer.Option(help="Score at or above which an image is out "
                                                                 "of domain (default per method, e.g. 0.5 for "
                                                                 "photo-style's probability).")] = None,
          ood_contamination: Annotated[Optional[float], typer.Option(help="Instead of a threshold: flag this "
                                                                     "share of images.")] = None,
          undersample: Annotated[Optional[str], typer.Option(help="random | cluster-centroids | nearmiss.")] = None,
          max_per_class: Annotated[Optional[int], typer.Option(help="Cap per class for --undersample.")] = None,
          embedder: Annotated[str, typer.Option(help="timm model for embeddings.")] = "tf_efficientnet_lite0",
          embedder_weights: Annotated[Optional[Path], typer.Option(help="Weight file for --embedder.")] = None,
          embed_size: Annotated[int, typer.Option(help="Embedding input size (px).")] = 160,
          materialize: Annotated[Optional[str], typer.Option(help="link | copy: kept images as an ImageFolder "
                                                             "under OUT/images.")] = None,
          layout: Layout = "auto", csv: Csv = None, path_col: PathCol = None, label_col: LabelCol = None,
          group_col: GroupCol = None, age_bands: AgeBands = "30,60",
          device: Device = "auto", seed: Seed = 0, workers: Workers = default_workers(), quiet: Quiet = False) -> None:
    """Mark exact / near duplicates, out-of-domain images and undersampled rows; nothing is deleted."""
    from imgcls.clean import CleanConfig, run_clean
    cfg = CleanConfig(dedup=dedup, near_dup=near_dup, dup_method=dup_method, dup_threshold=dup_threshold,
                      dup_candidates=dup_candidates, conflicts=conflicts, ood=ood,
                      ood_method=ood_method, ood_threshold=ood_threshold, ood_contamination=ood_contamination,
                      undersample=undersample, max_per_class=max_per_class, embedder=embedder,
                      embedder_weights=str(embedder_weights) if embedder_weights else None, embed_size=embed_size,
                      device=device, seed=seed)
    run_clean(src, out, cfg, layout_options(layout, csv, path_col, label_col, group_col, age_bands),
              workers=workers, materialize=materialize)
