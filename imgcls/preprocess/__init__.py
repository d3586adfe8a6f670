"""`imgcls preprocess`: face crop (deepface), background removal (rembg) and a resized image cache, offline.

Per image, in this order (see README "imgcls preprocess" for why):
  1. decode once through imgcls.io (EXIF orientation applied, any mode -> RGB);
  2. `--face-crop`: detect on the ORIGINAL image (the detector sees the real photo: a background already painted
     white, or hair cut away by the matting model, only removes context the detector uses), take the most confident
     face's box (the larger on a tie), grow it by `--face-margin` and cut it from the original pixels; no face ->
     `--no-face keep|center-crop|drop`; with `--remove-bg`, rembg's matte of the whole photo is cut with it (u2netp
     matting the crop alone can take the face for background: bench/bg_order.py);
  3. `--size`: scale (pad: longer side = N; crop: shorter side = N + centre crop; squash: N x N), the matte alike;
  4. `--remove-bg`: composite on the background colour (or keep as alpha); without a crop, rembg mattes the scaled
     image here;
  5. `--resize-mode pad`: borders in the background colour (after the matting, which never sees padding).

Outputs mirror the input's relative paths under OUT, plus `manifest.csv` (the input manifest with `source_path`,
`face_found`, `face_x`, `face_y`, `face_w`, `face_h`, `face_confidence`, `faces`, `face_kept`, `matte_kept`,
`bg_removed`; `path`/`root` and the scan columns describe the written image), `preprocess.json` (settings, counts,
timings) and `report.html`.
Resumable: an output written with the same settings from an input that is still the same file (its size, mtime and
sha256 as recorded in OUT/.preprocess_inputs.json) is kept (records come from the last manifest or, after an
interruption, from OUT/.preprocess_journal.jsonl).
"""
from __future__ import annotations

from imgcls.lazy import lazy_exports

# imported when first used (imgcls.lazy): `imgcls preprocess --help` reads imgcls.preprocess.config alone
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ("PreprocessConfig", "FORMATS", "NO_FACE_POLICIES"),
    "image": ("FACE_COLUMNS", "process_image", "save_image"),
    "outputs": ("JOURNAL", "SETTINGS_FILE", "output_names"),
    "run": ("run_preprocess",)})
