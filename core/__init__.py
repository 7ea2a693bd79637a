"""What every dlx package uses: the one error type, atomic file I/O, the registry type, lazy imports.
Imports nothing from dlx."""
from dlx.core.errors import DlxError, did_you_mean, unknown_name
from dlx.core.files import atomic_write, atomic_write_json, atomic_write_text, read_json, strict_json
from dlx.core.lazy import lazy_module, resolve
from dlx.core.reading import MAX_JSON_BYTES, MAX_JSON_DEPTH, NotJson, load_json, read_bytes
from dlx.core.registry import Registry

__all__ = ["DlxError", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "NotJson", "Registry", "atomic_write", "atomic_write_json",
           "atomic_write_text", "did_you_mean", "lazy_module", "load_json", "read_bytes", "read_json",
           "resolve", "strict_json", "unknown_name"]
