"""The SevenNet-0 trimming study as a package: it imports without torch and sevenn (they live
in the teacher environment only), its output fit solves the least-squares problem it states,
and it refuses to write weights inside a git work tree."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import facet.studies.sevennet_trim as pkg
from facet.studies.sevennet_trim import outfit, trim

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__))


def test_every_module_imports_without_torch_or_sevenn():
    blocker = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'sevenn', 'torch_geometric', 'e3nn'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib\n"
        f"for m in {MODULES!r}:\n"
        "    importlib.import_module('facet.studies.sevennet_trim.' + m)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'sevenn')))\n"
    )
    out = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    assert {"trim", "outfit", "radial", "tune", "evaluate", "basis", "report"} <= set(MODULES)


def test_output_fit_is_the_stacked_least_squares_solution():
    """``solve_output_fit`` from normal equations = ``lstsq`` of the stacked system
    ``[G_k; sqrt(s_k) F] W_k = [y_k; sqrt(s_k) Y_k]``, ``s_k = w tr(G_k'G_k) / tr(F'F)``."""
    rng = np.random.default_rng(0)
    n_w, nb, n_out, n_edge, w = 3, 4, 40, 25, 0.3
    G = rng.normal(size=(n_w, n_out, nb))
    y = rng.normal(size=(n_w, n_out))
    F = rng.normal(size=(n_edge, nb))
    Y = rng.normal(size=(n_edge, n_w))
    A = np.einsum("kib,kid->kbd", G, G)
    b = np.einsum("kib,ki->kb", G, y)
    yy = np.einsum("ki,ki->k", y, y)
    Ae, be = outfit.edge_normal_equations(F, Y)
    W, r2 = outfit.solve_output_fit(A, b, yy, Ae, be, w)
    assert W.shape == (nb, n_w)
    for k in range(n_w):
        s = w * np.trace(A[k]) / np.trace(F.T @ F)
        M = np.vstack([G[k], np.sqrt(s) * F])
        rhs = np.concatenate([y[k], np.sqrt(s) * Y[:, k]])
        ref = np.linalg.lstsq(M, rhs, rcond=None)[0]
        np.testing.assert_allclose(W[:, k], ref, rtol=1e-10, atol=1e-12)
        res = np.sum((G[k] @ W[:, k] - y[k]) ** 2)
        assert r2[k] == pytest.approx(1 - res / yy[k], rel=1e-10)


def test_weights_are_never_written_inside_a_git_work_tree(tmp_path):
    assert trim.inside_git_tree(ROOT / "x.pt")
    assert not trim.inside_git_tree(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="inside a git work tree"):
        trim.save_trimmed(None, ROOT / "weights" / "x.pt", {})


def test_linear_radial_is_a_bias_free_linear_map():
    torch = pytest.importorskip("torch")
    from facet.studies.sevennet_trim.radial import linear_radial

    W = np.arange(12.0).reshape(4, 3) / 7
    mod = linear_radial(W)
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(5, 4)), dtype=torch.float32)
    np.testing.assert_allclose(mod(x).detach().numpy(), x.numpy() @ W, rtol=1e-6)
    assert [p.shape for p in mod.parameters()] == [(4, 3)]
    assert not mod(torch.zeros(2, 4)).abs().sum()
