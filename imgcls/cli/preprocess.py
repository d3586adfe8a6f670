"""`imgcls preprocess`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imgcls.cli.common import (AgeBands, Csv, GroupCol, LabelCol, Layout, MaxPixels, OptSrc, PathCol, Quiet,
                               Workers, command, default_workers, layout_options)

EPILOG = """Examples:

  imgcls preprocess data/raw --size 384   # normalise (EXIF, RGB) and pad to 384x384: a cheap-to-decode cache

  imgcls preprocess data/raw --face-crop --remove-bg --size 384   # seed 003: deepface crop + rembg, white bg

  imgcls preprocess data/raw --face-crop --detector yunet --no-face center-crop --face-margin 0.3

  imgcls models fetch rembg   # once, before --remove-bg (installs u2netp.onnx, offline afterwards)"""


@command("preprocess", epilog=EPILOG)
def preprocess(src: OptSrc = None,
               out: Annotated[Path, typer.Option(help="Output folder (mirrors SRC; manifest.csv, report.html).")
                              ] = Path("data/processed"),
               remove_bg: Annotated[bool, typer.Option(
                   "--remove-bg", help="Remove the background with rembg (model file needed: imgcls models list).")
               ] = False,
               rembg_model: Annotated[str, typer.Option(help="rembg model (u2netp is fetchable offline).")
                                      ] = "u2netp",
               bg_color: Annotated[str, typer.Option(help="Colour behind the cut-out and the padding: name or "
                                                          "#rrggbb.")] = "white",
               keep_alpha: Annotated[bool, typer.Option(
                   "--keep-alpha", help="Keep rembg's mask as alpha (PNG output) instead of filling.")] = False,
               face_crop: Annotated[bool, typer.Option(
                   "--face-crop", help="Crop to the most confident face (deepface extract_faces, box on the "
                                       "original image).")] = False,
               detector: Annotated[str, typer.Option(
                   help="deepface detector backend: opencv (ships with OpenCV) or any other whose weights are in "
                        "$DEEPFACE_HOME/.deepface/weights.")] = "opencv",
               face_margin: Annotated[float, typer.Option(help="Margin around the face box, a fraction of its "
                                                               "size per side.")] = 0.2,
               no_face: Annotated[str, typer.Option(help="When no face is found: keep | center-crop | drop.")
                                  ] = "keep",
               size: Annotated[Optional[int], typer.Option(help="Square output side in pixels (default: keep "
                                                                "the size).", show_default=False)] = None,
               resize_mode: Annotated[str, typer.Option(help="pad (letterbox) | crop (centre) | stretch.")
                                      ] = "pad",
               detect_size: Annotated[int, typer.Option(
                   help="Detect faces on a copy whose longer side is at most this (boxes mapped back).")] = 640,
               image_format: Annotated[str, typer.Option(
                   "--format", help="auto (keep jpg/png/webp, else png) | png | jpg | webp.")] = "auto",
               quality: Annotated[int, typer.Option(help="JPEG / WebP quality.")] = 95,
               layout: Layout = "auto", csv: Csv = None, path_col: PathCol = None, label_col: LabelCol = None,
               group_col: GroupCol = None, age_bands: AgeBands = "30,60",
               workers: Workers = default_workers(), max_pixels: MaxPixels = 89_478_485,
               quiet: Quiet = False) -> None:
    """Face crop (deepface), background removal (rembg) and resize, offline -> processed images + manifest.csv.
    Order: detect faces on the original, crop it, scale to --size, remove the background, pad. Resumable."""
    from imgcls.pipeline import default_input
    from imgcls.preprocess import PreprocessConfig, run_preprocess
    if src is None:
        src = default_input("preprocess")
    cfg = PreprocessConfig(remove_bg=remove_bg, rembg_model=rembg_model, bg_color=bg_color, keep_alpha=keep_alpha,
                           face_crop=face_crop, detector=detector, face_margin=face_margin, no_face=no_face,
                           detect_size=detect_size, size=size, resize_mode=resize_mode, image_format=image_format,
                           quality=quality, max_pixels=max_pixels)
    run_preprocess(src, out, cfg, layout_options(layout, csv, path_col, label_col, group_col, age_bands),
                   workers=workers)
