"""The README's opening Python snippet runs as printed: relax and MD with the shipped model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).parents[2] / "README.md"


def test_readme_snippet_runs(capsys):
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks and text.index(blocks[0]) < text.index("It follows two papers")
    code = blocks[0]
    assert 'FacetCalculator("default")' in code and "FIRE(" in code and "Langevin(" in code
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    atoms = scope["atoms"]
    assert len(atoms) == 16 and atoms.calc.compile_count >= 1
    e = atoms.get_potential_energy()
    assert np.isfinite(e) and -6.0 < e / len(atoms) < -4.0  # Si: about -5.4 eV/atom (PBE)
    assert capsys.readouterr().out.strip()
