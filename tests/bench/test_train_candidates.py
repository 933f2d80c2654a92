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


def test_values_are_read_as_facet_train_reads_its_overrides():
    from facet.train.config import apply_overrides

    spec = "channels= 64,r_cut=5.0,pseudo=no,dtype=null,product=cg-dense,tag=1e-3"
    o = parse_overrides(spec)
    assert o == apply_overrides({}, spec.split(","))
    assert o == {"channels": 64, "r_cut": 5.0, "pseudo": False, "dtype": None,
                 "product": "cg-dense", "tag": "1e-3"}
    assert [type(o[k]) for k in ("channels", "r_cut", "pseudo")] == [int, float, bool]
