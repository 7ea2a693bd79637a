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
