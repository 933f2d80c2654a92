"""Train and export the shipped default model: ``prepare``, ``train`` and ``export``
(:mod:`facet.train.default_model`, where the steps and options are described)."""

import sys

from facet.train.default_model import main

if __name__ == "__main__":
    sys.exit(main())
