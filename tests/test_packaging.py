"""Packaging metadata: the license is declared the way current build back ends read it.

setuptools deprecates ``project.license`` as a TOML table (``{text = "MIT"}``) and stops building
such projects after 2027-02-18; PEP 639 declares an SPDX expression and the license files that
go into the wheel. Before this test the project declared MIT without shipping a LICENSE file.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression_with_its_file():
    project = _pyproject()["project"]
    assert isinstance(project["license"], str), "project.license must be an SPDX string (PEP 639)"
    assert project["license"] == "MIT"
    files = project["license-files"]
    assert files, "project.license-files names the license text shipped in the wheel"
    for pattern in files:
        matches = list(ROOT.glob(pattern))
        assert matches, f"license-files pattern {pattern!r} matches no file"
        text = matches[0].read_text()
        assert "MIT License" in text and "Permission is hereby granted" in text


def test_build_backend_reads_pep_639_metadata():
    requires = _pyproject()["build-system"]["requires"]
    (setuptools,) = [r for r in requires if r.startswith("setuptools")]
    m = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools)
    assert m and int(m.group(1)) >= 77, "PEP 639 license metadata needs setuptools >= 77"
