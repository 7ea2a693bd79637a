"""One named lazy import for modules whose import cost start-up can't afford (torch, optuna, matplotlib):
`optuna = lazy_module("optuna")` reads like an import and loads on first attribute access."""
from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule(ModuleType):
    def __init__(self, name: str):
        super().__init__(name)
        self._loaded: ModuleType | None = None

    def _load(self) -> ModuleType:
        if self._loaded is None:
            self._loaded = importlib.import_module(self.__name__)
        return self._loaded

    def __getattr__(self, attribute: str):
        return getattr(self._load(), attribute)


def lazy_module(name: str) -> ModuleType:
    return LazyModule(name)


def resolve(reference: str):
    """`"package.module:attribute"` → the attribute, imported now: lets a lower layer name a function of a
    higher one (a dataset entry naming its loader) without importing it."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def lazy_attributes(package: str, where: dict[str, list[str]]):
    """(`__getattr__`, names) for a package `__init__` whose public names live in submodules that are costly to
    import: each name is imported from its module on first use (PEP 562) and then kept in the package."""
    module_of = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str):
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = resolve(f"{module_of[name]}:{name}")
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__, sorted(module_of)
