"""facet.bench.train_candidates reads its KEY=VALUE overrides as the model config's types."""

import pytest

from facet.bench.train_candidates import parse_overrides
from facet.nn.presets import get_preset


def test_overrides_are_typed_and_make_a_valid_config():
    o = parse_overrides("channels=128,lmax=1,pseudo=False,product=cg-dense")
    assert o == {"channels": 128, "lmax": 1, "pseudo": False, "product": "cg-dense"}
    cfg = get_preset("facet-m").replace(**o)
    assert (cfg.channels, cfg.lmax, cfg.pseudo) == (128, 1, False)


def test_an_item_without_a_value_is_refused_by_name():
    with pytest.raises(SystemExit, match="lmax"):
        parse_overrides("channels=128,lmax")
