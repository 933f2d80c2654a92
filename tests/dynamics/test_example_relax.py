"""scripts/example_relax.py relaxes its three crystals with the shipped model by default."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "example_relax.py"


@pytest.mark.slow
def test_example_relax_uses_shipped_model(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                       cwd=tmp_path, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                          "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "random" not in r.stderr  # a preset would warn about random weights
    rows = re.findall(r"^(\w+)\s+E =\s+(-?[\d.]+) eV .*converged: (True|False)", r.stdout, re.M)
    assert [f for f, _, _ in rows] == ["Si2", "ClNa", "Cu4"]
    assert all(c == "True" for _, _, c in rows)
    # per-atom energies near the PBE ones (Si -5.4, NaCl -3.4, Cu -3.7 eV/atom)
    per_atom = {f: float(e) / n for (f, e, _), n in zip(rows, (2, 2, 4), strict=True)}
    assert -6 < per_atom["Si2"] < -4.8 and -4 < per_atom["ClNa"] < -2.8
    assert -4.3 < per_atom["Cu4"] < -3.1
