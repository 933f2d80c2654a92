r"""Cases of the tensor-product microbenchmark: settings, configuration and candidates.

The settings of Xie et al. (ICML 2025, sec. 5) plus the realistic ``edge`` setting, the
theoretical cost exponents they are compared with, :class:`BenchConfig` (what a run measures),
the candidates timed (every registered variant, gaunt-fourier's direct convolution and
``e3nn.tensor_product``) and the order in which cases run. The method is described in
:mod:`tensorproducts.bench.harness`; the timing itself is in :mod:`tensorproducts.bench.measure`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import e3nn_jax as e3nn

from ..registry import REGISTRY

__all__ = [
    "ALL_L",
    "BenchConfig",
    "SETTINGS",
    "THEORY",
    "batch_size",
    "candidates",
    "iter_cases",
    "reached_outputs",
]


# ---------------------------------------------------------------------------- settings


def _siso(lmax: int):
    ir = e3nn.Irreps(f"{lmax}{'e' if lmax % 2 == 0 else 'o'}")
    return ir, ir, e3nn.Irreps(f"{lmax}e")


def _simo(lmax: int):
    ir = _siso(lmax)[0]
    return ir, ir, e3nn.s2_irreps(2 * lmax)


def _mimo(lmax: int):
    return e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax), e3nn.s2_irreps(2 * lmax)


def _edge(lmax: int):
    return e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax)


# setting -> irreps builder; "edge" uses channels and SH input for y
SETTINGS: dict[str, Callable] = {"siso": _siso, "simo": _simo, "mimo": _mimo, "edge": _edge}

# Theoretical cost exponents per sample (cost ~ L^k) for the paper's settings; see
# docs/tensorproducts.md for the counting. None: not defined for that setting.
THEORY: dict[str, dict[str, float]] = {
    "cg-dense": {"siso": 3, "simo": 4, "mimo": 6},
    "e3nn": {"siso": 3, "simo": 4, "mimo": 6},
    "cg-sparse": {"siso": 2, "simo": 3, "mimo": 5},
    "gaunt-grid": {"siso": 3, "simo": 3, "mimo": 3},
    "vector-gaunt-grid": {"siso": 3, "simo": 3, "mimo": 3},
    "gaunt-fourier": {"siso": 3, "simo": 3, "mimo": 3},
    "gaunt-fourier[direct]": {"siso": 4, "simo": 4, "mimo": 4},
    "matrix": {"siso": 6, "simo": 6, "mimo": 6},
    "so2": {"mimo": 3},
}


ALL_L = tuple(range(1, 11))


@dataclass(frozen=True)
class BenchConfig:
    """What to measure.

    ``batch`` maps L to the batch size; a key ``"setting:L"`` (e.g. ``"siso:10"``) overrides it
    for one setting. The single-irrep settings cost only O(L^3)-O(L^4) per sample, so they keep
    the paper's 10,000 samples at every L (per-call overhead would otherwise hide the cost-vs-L
    slope); mimo shrinks the batch with L to keep one call below a second.
    """

    lmaxes: dict = field(default_factory=lambda: {"siso": ALL_L, "simo": ALL_L, "mimo": ALL_L})
    bwd_lmaxes: tuple[int, ...] = (2, 6, 10)
    settings: tuple[str, ...] = ("mimo", "edge", "siso", "simo")  # run order: most important first
    modes: tuple[str, ...] = ("fwd", "fwd_bwd")
    bwd_settings: tuple[str, ...] = ("mimo", "edge")  # forward+backward only where it matters
    bwd_channel_counts: tuple[int, ...] = (64,)
    # per-variant limits: largest L measured (e3nn builds its CG tables for minutes at L=10)
    max_l: dict = field(default_factory=lambda: {"e3nn": 5})
    only_settings: dict = field(default_factory=lambda: {"gaunt-fourier[direct]": ("mimo",)})
    batch: dict = field(default_factory=lambda: {
        1: 10000, 2: 10000, 3: 10000, 4: 4000, 5: 4000, 6: 2000, 7: 1000, 8: 1000, 9: 500, 10: 500,
        **{f"{s}:{l}": 10000 for s in ("siso", "simo") for l in ALL_L}})  # fmt: skip
    channel_counts: tuple[int, ...] = (16, 64, 128)
    channel_lmaxes: tuple[int, ...] = (3,)
    edges: int = 2000
    variants: tuple[str, ...] | None = None  # None: every registered variant + baselines
    warmup: int = 2
    repeats: int = 10
    max_call_s: float = 3.0
    deadline_s: float = 1e9
    dtype: str = "float32"
    seed: int = 0


def batch_size(batch: dict, setting: str, lmax: int) -> int:
    """Batch of ``setting`` at ``lmax``: key ``"setting:L"``, else ``L`` (int or str), else 500."""
    for key in (f"{setting}:{lmax}", lmax, str(lmax)):
        if key in batch:
            return int(batch[key])
    return 500


# ---------------------------------------------------------------------------- candidates


def _e3nn_tp(x, y, irreps_out, weights=None):
    """e3nn-jax's own product on the same paths (one output block per path, not summed)."""
    return e3nn.tensor_product(x, y, filter_ir_out=irreps_out)


def candidates() -> dict[str, tuple[Callable, bool]]:
    """``{name: (apply, requires_sh_input)}``: every registered variant, FFT and direct
    convolution of gaunt-fourier, and ``e3nn`` (``e3nn.tensor_product``) as the outside peer."""
    out = {name: (spec.apply, spec.requires_sh_input) for name, spec in sorted(REGISTRY.items())}
    if "gaunt-fourier" in REGISTRY:
        out["gaunt-fourier[direct]"] = (
            functools.partial(REGISTRY["gaunt-fourier"].apply, convolution="direct"),
            False,
        )
    out["e3nn"] = (_e3nn_tp, False)
    return out


def reached_outputs(name, ir1, ir2, out):
    """The setting's outputs if ``name`` has a path into them; else the same degrees with the
    other parity (``vector-gaunt-grid``'s odd paths land on ``0o + 1e + 2o ...``, where the
    paper's settings put ``0e + 1o + 2e ...``); None when neither is reached (nothing to time)."""
    spec = REGISTRY.get(name.split("[")[0])
    if spec is None or spec.paths(ir1, ir2, out):
        return out
    flipped = e3nn.Irreps([(mul, (ir.l, -ir.p)) for mul, ir in out])
    return flipped if spec.paths(ir1, ir2, flipped) else None


def iter_cases(cfg: BenchConfig):
    """Setting by setting (``cfg.settings`` order), each forward then forward+backward, so a
    time budget that runs out cuts the least important cases, not a whole mode."""
    for setting in cfg.settings:
        for mode in cfg.modes:
            if mode == "fwd_bwd" and setting not in cfg.bwd_settings:
                continue
            if setting == "edge":
                chans_list = cfg.channel_counts if mode == "fwd" else cfg.bwd_channel_counts
                for lmax in cfg.channel_lmaxes:
                    for chans in chans_list:
                        yield {"setting": setting, "L": lmax, "channels": chans, "mode": mode}
            else:
                ls = cfg.lmaxes.get(setting, ()) if mode == "fwd" else cfg.bwd_lmaxes
                for lmax in ls:
                    yield {"setting": setting, "L": lmax, "channels": 1, "mode": mode}
