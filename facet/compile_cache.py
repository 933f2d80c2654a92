"""Persistent JAX compilation cache for the calculator and training (on by default).

Compiling the forces + stress program of a structure's padded shape takes seconds on a CPU, a
training step tens of seconds; a second process with the same shapes can load the compiled
program from disk instead. :func:`enable_compile_cache` points JAX's persistent compilation
cache (``jax_compilation_cache_dir``) at ``<user cache folder>/facet/jax`` (``platformdirs``:
``~/.cache/facet/jax`` on Linux, honouring ``XDG_CACHE_HOME``). :class:`facet.FacetCalculator`
and ``facet train`` call it before they compile anything.

Switches (checked in this order):

* ``FacetCalculator(..., compile_cache=False)`` or the training option ``run.compile_cache:
  false``: leave JAX's configuration alone;
* the environment variable ``FACET_COMPILE_CACHE``: ``0``/``off``/``false``/``no`` turns the
  cache off, ``1``/``on``/``true``/``yes`` (or unset) uses the default folder, anything else is
  the folder to use;
* a cache the user configured for JAX (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)``) or turned off
  (``jax_enable_compilation_cache=False``) is respected and never replaced.

JAX keys every entry by the lowered program, the compile options, the JAX/jaxlib versions and the
device, so a changed model, shape, dtype or JAX version compiles afresh; JAX's own thresholds
apply (programs that compile in under ``jax_persistent_cache_min_compile_time_secs``, 1 s by
default, are not stored). This is the one global JAX setting Facet changes, and only when no
cache was configured; the folder can be deleted at any time.

Loading an entry on CPU, jaxlib 0.10 writes a false "Target machine feature +prefer-no-gather
is not supported on the host machine ... could lead to execution errors such as SIGILL" (and
the same for ``+prefer-no-scatter``): LLVM tuning preferences, not instruction-set features
(jax-ml/jax#38445, openxla/xla#44565). While a cache is in use, JAX's cache loads run inside
:func:`facet.xla_stderr.quiet_tuning_warnings`, which drops exactly these lines and passes
every other (a real feature mismatch included) to stderr unchanged.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .xla_stderr import install_cache_filter

__all__ = ["ENV_VAR", "default_cache_dir", "enable_compile_cache"]

#: Environment variable switching the cache off (``0``) or naming its folder.
ENV_VAR = "FACET_COMPILE_CACHE"

_OFF = {"0", "off", "false", "no"}
_ON = {"", "1", "on", "true", "yes"}


def default_cache_dir() -> Path:
    """``<user cache folder>/facet/jax`` (``~/.cache/facet/jax`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("facet", appauthor=False)) / "jax"


def enable_compile_cache(setting: bool | str | os.PathLike | None = True) -> Path | None:
    """Point JAX's persistent compilation cache at Facet's folder unless switched off (see the
    module docstring); returns the folder in use, or None when no cache is used.

    ``setting``: True (default folder, or ``$FACET_COMPILE_CACHE``), False (off), or a folder.
    """
    if setting is False:
        return None
    import jax

    configured = jax.config.jax_compilation_cache_dir
    if not jax.config.jax_enable_compilation_cache:
        return None
    if configured:
        install_cache_filter()
        return Path(configured)
    if setting is True or setting is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if env.lower() in _OFF:
            return None
        folder = default_cache_dir() if env.lower() in _ON else Path(env).expanduser()
    else:
        folder = Path(setting).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(
            f"JAX compilation cache off: cannot create {folder} ({err}); set {ENV_VAR} to a "
            f"writable folder or to 0",
            stacklevel=2,
        )
        return None
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", str(folder))
    install_cache_filter()
    # JAX decides once per process whether the cache is used (at the first compilation); a
    # process that compiled something before this call would otherwise never use it.
    compilation_cache.reset_cache()
    return folder
