"""Training: configuration, loss, optimiser, checkpoints, data parallelism and the loop.

Entry points: :func:`facet.train.loop.train` (``facet train``) and
:func:`facet.train.evaluate.evaluate` (``facet evaluate``). Submodules are imported lazily so
that ``import facet.train`` stays cheap.
"""

from .config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "load_config"]
