"""dlx: YAML experiment specs in, trained PyTorch models, searches and ensembles out.

The one import package dlx installs. Its stages keep their folders at the repository root (`cli/`, `core/`,
`train/`, ...) and install as `dlx.cli`, `dlx.core`, `dlx.train`, ... (pyproject.toml's package-dir), so nothing
else lands at the top of site-packages. Imports nothing, so that `import dlx.core` costs no more than core."""
