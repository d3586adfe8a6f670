"""Background removal with rembg, offline. The model file must be present first (imgcls.weights.rembg_model_file
looks where rembg 2.x itself looks - $U2NET_HOME, ~/.rembg/models/<model>/, ~/.u2net - because rembg downloads a
missing file when a session is created). One rembg session per worker process, reused for every image."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

from imgcls.errors import UserError


def import_rembg():
    """rembg, imported without compiling pymatting: rembg's package import loads pymatting (alpha matting, which
    imgcls never asks for), whose numba functions with signatures compile at import, 37 s on a fresh install here
    (and in every process when numba's cache cannot be kept, pymatting issue #84); with numba's JIT off during the
    import they stay plain Python, 0.7 s. Only pymatting's functions are affected (defined during the import);
    numba compiles as usual afterwards. rembg already imported: returned as it is."""
    if "rembg" in sys.modules:
        return sys.modules["rembg"]
    try:
        from numba.core import config as numba_config
    except ImportError:              # no numba: nothing compiles at import
        import rembg
        return rembg
    old = numba_config.DISABLE_JIT
    numba_config.DISABLE_JIT = True
    try:
        import rembg
    finally:
        numba_config.DISABLE_JIT = old
    return rembg


def _new_session(rembg, model: str, opts):
    """rembg.new_session, which takes int($OMP_NUM_THREADS) for onnxruntime's threads: a value that is no whole
    number (set but empty, OpenMP's nested '4,2') crashed it with a ValueError traceback. Such a value is hidden from
    it for the call (onnxruntime then chooses, as without the variable) and put back."""
    omp, hidden = os.environ.get("OMP_NUM_THREADS"), False
    if omp is not None:
        try:
            int(omp)
        except ValueError:      # what rembg's int() would raise
            hidden = True
    if hidden:
        del os.environ["OMP_NUM_THREADS"]
    try:
        return rembg.new_session(model, sess_opts=opts)
    finally:
        if hidden:
            os.environ["OMP_NUM_THREADS"] = omp


class BackgroundRemover:
    def __init__(self, model: str = "u2netp", threads: int | None = 0, path: Path | None = None):
        """`path`: the model file weights.rembg_model_file already found and checked (preprocess's check before the
        scan, passed to its workers: u2netp's md5 was computed again in every worker); None: found and checked
        here (MissingWeightsError naming the file, where it goes and the fix)."""
        if path is None:
            from imgcls.weights import rembg_model_file
            path = rembg_model_file(model)
        import onnxruntime as ort
        rembg = import_rembg()
        from rembg.sessions import sessions_names
        if model not in sessions_names:
            raise UserError(f"unknown rembg model '{model}'; use one of: {', '.join(sessions_names)}")
        opts = ort.SessionOptions()
        # no busy-waiting between ops: on a shared or multi-worker CPU spinning threads only steal time
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        self.model = model
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, InvalidProtobuf
        try:
            self.session = _new_session(rembg, model, opts)
        except (Fail, InvalidArgument, InvalidProtobuf) as e:   # a file of a model with no known md5, cut short
            from imgcls.errors import MissingWeightsError
            raise MissingWeightsError(f"rembg model file {path} cannot be loaded: it is damaged or not an ONNX "
                                      f"model (ONNX Runtime: {' '.join(str(e).split())}); copy it again from a "
                                      f"machine where rembg downloaded it") from None

    def mask(self, im: Image.Image) -> Image.Image:
        """rembg's foreground mask ('L', same size as `im`): what rembg.remove uses as alpha."""
        return self.session.predict(im.convert("RGB"))[0]

    def cutout(self, im: Image.Image, bg: tuple[int, int, int] | None = (255, 255, 255),
               mask: Image.Image | None = None) -> Image.Image:
        """The foreground: RGBA with the mask as alpha when `bg` is None, else RGB composited on `bg`. `mask`: one
        already computed (on the uncropped image, then cut and scaled as `im` was), else rembg's mask of `im`."""
        rgb = im.convert("RGB")
        m = self.mask(rgb) if mask is None else mask
        if bg is None:
            out = rgb.copy()
            out.putalpha(m)
            return out
        out = Image.new("RGB", rgb.size, tuple(bg))
        out.paste(rgb, mask=m)
        return out
