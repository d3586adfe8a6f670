"""A package's re-exports, imported when first used (PEP 562): `from imgcls.clean import run_clean` imports
imgcls.clean.run then, while `from imgcls.clean.config import CleanConfig` -- what building the command line needs --
runs a package __init__ that imports nothing heavy (pandas, numpy, torch: most of `imgcls --help`'s start-up)."""
from __future__ import annotations

import importlib
import types
from typing import Callable


def lazy_exports(package: str, table: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable, Callable]:
    """`__all__, __getattr__, __dir__ = lazy_exports(__name__, {"run": ("run_clean", ...), ...})`: each name of
    `table[sub]` is `package.sub`'s (`sub` itself where it names a module by its full name, imgcls.metrics),
    imported at the first access and then kept in the package's namespace."""
    where = {name: sub for sub, names in table.items() for name in names}
    module = importlib.import_module(package)

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        sub = where[name]
        value = getattr(importlib.import_module(full(sub)), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(where))

    def full(sub: str) -> str:
        return sub if sub.startswith("imgcls.") else f"{package}.{sub}"

    class LazyPackage(types.ModuleType):
        """A name re-exported from the submodule of the same name (imgcls.split's `assign`, of imgcls.split.assign)
        stays the re-exported object: importing that submodule (`from imgcls.split.assign import ...`, anywhere,
        before the name was first asked for) binds the module to the package's attribute, as Python does for every
        submodule, which an eager `from .assign import assign` in __init__ rebound and a lazy export would not."""

        def __setattr__(self, name: str, value) -> None:
            if isinstance(value, types.ModuleType) and name in where and value.__name__ == full(where[name]):
                value = getattr(value, name)
            super().__setattr__(name, value)

    module.__class__ = LazyPackage
    return list(where), __getattr__, __dir__
