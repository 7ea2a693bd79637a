"""What every dlx package uses: the one error type, atomic file I/O, the registry type, lazy imports.
Imports nothing from dlx."""
