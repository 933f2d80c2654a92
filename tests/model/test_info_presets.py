"""`facet info --presets` lists every preset with the parameter count of the model it builds."""

from __future__ import annotations

import re

from facet.cli import main
from facet.nn.presets import PRESETS, count_parameters, create_model


def test_info_presets_counts_match_built_model(capsys):
    assert main(["info", "--presets"]) == 0
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(facet-\S+)\s+([\d,]+)", out, flags=re.M))
    assert set(rows) == set(PRESETS)
    built = count_parameters(create_model("facet-s", seed=0))
    assert int(rows["facet-s"].replace(",", "")) == built
    # the paper's small model has about 250k parameters (REFERENCE.md sec. 1: 252,989)
    assert 230_000 < built < 270_000
