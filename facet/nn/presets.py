"""Named model configurations (a registry) and parameter counting.

* ``facet-s``: the paper's small model size (~250k parameters; the authors' Facet-S has 252,989):
  3 blocks, 72 channels of ``0e + 1o + 2e``, CG message product, exact quadratic grid MLP.
* ``facet-m``: larger: 3 blocks, 96 channels of ``l <= 3`` with pseudo-parity irreps.
"""

from __future__ import annotations

from .config import ModelConfig

__all__ = ["PRESETS", "get_preset", "count_parameters", "describe_presets", "create_model"]

PRESETS: dict[str, ModelConfig] = {
    "facet-s": ModelConfig(
        channels=72, lmax=2, pseudo=False, num_layers=3, mixer_hidden=72, num_radial=10
    ),
    "facet-m": ModelConfig(
        channels=96, lmax=3, pseudo=True, num_layers=3, mixer_hidden=64, num_radial=12
    ),
}


def get_preset(name: str) -> ModelConfig:
    """The registered config; ``KeyError`` lists the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None


def create_model(
    preset: str | ModelConfig = "facet-s", *, seed: int = 0, dtype: str | None = None, **overrides
):
    """Build a :class:`facet.nn.FacetModel` with random weights.

    ``preset`` is a name in :data:`PRESETS` or a :class:`ModelConfig`; ``overrides`` replace config
    fields (unknown keys raise ``KeyError``); ``dtype="float64"`` needs JAX's x64 mode.
    """
    from flax import nnx

    from .model import FacetModel

    cfg = preset if isinstance(preset, ModelConfig) else get_preset(preset)
    if dtype is not None:
        overrides["dtype"] = dtype
    if overrides:
        cfg = cfg.replace(**overrides)
    return FacetModel(cfg, rngs=nnx.Rngs(seed))


def count_parameters(model) -> int:
    """Number of trainable scalars (``nnx.Param`` leaves; E0s are not counted)."""
    import jax
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    return int(sum(x.size for x in jax.tree_util.tree_leaves(state)))


def describe_presets() -> str:
    """A table of every preset with its parameter count (for ``facet info``)."""
    import jax

    lines = [f"{'preset':<10} {'params':>9}  layers  channels  lmax  pseudo  product    grid act."]
    for name, cfg in PRESETS.items():
        # Counting needs the shapes only: trace construction abstractly (no FLOPs, no memory).
        from flax import nnx

        from .model import FacetModel

        abstract = nnx.eval_shape(lambda cfg=cfg: FacetModel(cfg, rngs=nnx.Rngs(0)))
        n = count_parameters(abstract)
        lines.append(
            f"{name:<10} {n:>9,}  {cfg.num_layers:>6}  {cfg.channels:>8}  {cfg.lmax:>4}  "
            f"{str(cfg.pseudo):>6}  {cfg.product:<10} {cfg.mixer_activation}"
        )
    del jax
    return "\n".join(lines)
