"""The package version (a leaf module: checkpoints and data manifests record it without
importing the package root)."""

__version__ = "0.1.0"
