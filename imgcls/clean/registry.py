"""Out-of-domain detectors behind one interface (the shape of cleanlab Datalab's issue managers): one class each in
imgcls.clean.ood, listed here by name, chosen with --ood-method. The registry imports the detectors, never the
reverse (their shared base is imgcls.clean.ood_base)."""
from __future__ import annotations

from imgcls.clean.ood import DETECTORS
from imgcls.clean.ood_base import OODDetector, OODInputs  # noqa: F401  (OODInputs: what callers build for score())
from imgcls.errors import UserError

OOD_DETECTORS: dict[str, type[OODDetector]] = {cls.name: cls for cls in DETECTORS}


def get_detector(name: str) -> OODDetector:
    if name not in OOD_DETECTORS:
        raise UserError(f"unknown --ood-method '{name}'; use one of: {', '.join(sorted(OOD_DETECTORS))}")
    return OOD_DETECTORS[name]()
