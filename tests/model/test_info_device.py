"""`facet info` says which device JAX will use, and how to get the GPU back end."""

from __future__ import annotations

import jax

from facet.cli import main


def test_info_names_the_device_jax_uses(capsys, monkeypatch):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    dev = jax.devices()[0]
    (line,) = [ln for ln in out.splitlines() if ln.startswith("JAX will use")]
    assert line.startswith(f"JAX will use {dev.platform.upper()} ")
    assert str(dev) in line
    if dev.platform == "cpu":
        assert ".[cuda12]" in line
        # a machine with an NVIDIA driver but CPU-only JAX is told what is missing
        import shutil

        monkeypatch.setattr(shutil, "which", lambda name: "/bin/" + name)
        assert main(["info"]) == 0
        assert "NVIDIA driver is present" in capsys.readouterr().out
