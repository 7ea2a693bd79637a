"""One registry type for every pluggable kind (layers, activations, datasets, optimisers, schedulers, samplers,
pruners, ensemble methods, report builders), so all of them match names and report misses alike."""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from dlx.core.errors import DlxError, unknown_name

T = TypeVar("T")


def normalise(name: str) -> str:
    """Names match case-insensitively with `-` and `_` alike: `Conv2D`, `conv2d`; `fashion-mnist`, `fashion_mnist`."""
    return str(name).casefold().replace("-", "_")


class Registry(Generic[T]):
    """Name → object, in registration order. `get` raises the one did-you-mean error for an unknown name.

    `kind` names the entries in messages ("layer type", "sampler"); `key` is the spec key path that usually
    holds such a name, used when the caller gives none.
    """

    def __init__(self, kind: str, key: str | None = None):
        self.kind = kind
        self.key = key
        self._entries: dict[str, tuple[str, T]] = {}

    def register(self, name: str, obj: T | None = None):
        """`registry.register("adam", make_adam)`, or as a decorator: `@registry.register("adam")`."""
        def add(item: T) -> T:
            folded = normalise(name)
            if folded in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")  # a programming error, not input
            self._entries[folded] = (name, item)
            return item
        return add if obj is None else add(obj)

    def get(self, name: str, *, key: str | None = None, file=None) -> T:
        entry = self._entries.get(normalise(name))
        if entry is None:
            raise self.unknown(name, key=key, file=file)
        return entry[1]

    def unknown(self, name: str, *, key: str | None = None, file=None) -> DlxError:
        return unknown_name(self.kind, name, self.names(), key=key or self.key, file=file)

    def canonical(self, name: str, *, key: str | None = None, file=None) -> str:
        """The name as registered (`conv2d` → `Conv2D`); unknown names raise as `get` does."""
        self.get(name, key=key, file=file)
        return self._entries[normalise(name)][0]

    def names(self) -> list[str]:
        return [name for name, _ in self._entries.values()]

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._entries.values()))

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and normalise(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


