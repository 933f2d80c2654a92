"""Compiled forces + stress programs of trained models kept on disk, so that a fresh process skips
building the network, tracing, lowering and JAX's compilation-cache lookup (issue 18).

A :class:`facet.FacetCalculator` whose model is read from a checkpoint (the shipped
``"default"``, a checkpoint or run folder) keeps in ``<compilation cache folder>/facet-programs``
(:mod:`facet.compile_cache`; ``~/.cache/facet/jax/facet-programs`` on Linux):

* ``<model key>.json``: what the calculator needs before its first structure: the model's
  cutoff, dtype and supported elements, and which checkpoint array each weight input of the
  program is (key, shape, dtype), checked value for value against the built model when written;
* ``<model key>-<nodes>-<edges>-<graphs>.prog``: the compiled program of one padded shape (XLA's
  serialized executable, :mod:`jax.experimental.serialize_executable`) after a header with its
  key, shape, input and output counts and the SHA-256 of the payload.

The model key is a SHA-256 over the checkpoint (its ``COMPLETE`` digest, which covers
``meta.json`` and through it the arrays and the configuration), the dtype asked for, Facet's
version, the installed versions of JAX, jaxlib, Flax, e3nn-jax, NumPy and ml_dtypes, the backend
(platform, its version, device kind), the host CPU's feature flags, ``XLA_FLAGS`` and JAX's
default matmul precision. Each file also lists the source files of ``facet`` and
``tensorproducts`` that were loaded when it was written (the network, the physics, the batch
layout...) with the SHA-256 of their bytes; a file whose sources changed since is stale and
ignored (the calculator compiles afresh and rewrites it). A stored
program is the executable that the calculator's own ``jax.jit`` compiles for that shape (the
same lowering of the same function), so it returns the normal path's numbers bit for bit.

A later process with the same key reads the json instead of building the network (Flax,
e3nn-jax, SymPy and SciPy are not imported) and, at its first structure of a stored shape, loads
the program and the checkpoint's arrays. A file that does not match (unreadable, another key or
shape in its header, a payload whose checksum fails, an executable XLA refuses) gets one
warning and the calculator takes the normal path for that shape: it builds the model, compiles
(or loads from JAX's cache) and rewrites the file. Reading ``calc.model`` returns the calculator
to the normal path for good, since the weights may then be changed in place.

Off with ``FacetCalculator(..., program_cache=False)``, ``FACET_PROGRAM_CACHE=0``, or with the
compilation cache off (``compile_cache=False``, ``FACET_COMPILE_CACHE=0``). The folder can be
deleted at any time. XLA:CPU's false "machine type doesn't match" lines for the tuning-only
features ``+prefer-no-gather``/``+prefer-no-scatter`` are kept off stderr while a program loads
(:mod:`facet.xla_stderr`; jax-ml/jax#38445). Like JAX's own cache, the files hold machine
code for this machine and are loaded as such: keep the cache folder private to the user (it
is, by default).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import struct
import warnings
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import jax
import numpy as np

from .version import __version__
from .xla_stderr import quiet_tuning_warnings

__all__ = ["ENV_VAR", "FORMAT", "SUBFOLDER", "ModelInfo", "ProgramStore", "enabled",
           "fresh_compile", "loaded_sources", "sources_digest"]

#: Environment variable switching the stored programs off (``0``/``off``/``false``/``no``).
ENV_VAR = "FACET_PROGRAM_CACHE"
#: Version of the file layout (part of every key).
FORMAT = 1
#: Folder of the stored programs inside the compilation cache folder.
SUBFOLDER = "facet-programs"

_MAGIC = b"FACETPRG"
_OFF = {"0", "off", "false", "no"}
_PACKAGES = ("jax", "jaxlib", "flax", "e3nn-jax", "numpy", "ml_dtypes")


def enabled(setting: bool = True) -> bool:
    """Whether stored programs are used: ``setting`` and ``$FACET_PROGRAM_CACHE`` not off."""
    return bool(setting) and os.environ.get(ENV_VAR, "").strip().lower() not in _OFF


_PACKAGE_ROOTS = ("facet", "tensorproducts")


@cache
def _root(package: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(package)  # a top-level name: nothing is imported
    locations = spec.submodule_search_locations if spec is not None else None
    return Path(next(iter(locations))).resolve() if locations else None


def loaded_sources() -> list[str]:
    """``package/relative/path.py`` of every loaded module of ``facet`` and ``tensorproducts``."""
    import sys

    out = set()
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        origin = getattr(module, "__file__", None)
        root = _root(top) if top in _PACKAGE_ROOTS and origin else None
        if root is not None and Path(origin).resolve().is_relative_to(root):
            out.add(f"{top}/{Path(origin).resolve().relative_to(root).as_posix()}")
    return sorted(out)


def sources_digest(files: list[str]) -> str:
    """SHA-256 over the names and bytes of ``files`` (as :func:`loaded_sources` names them); a
    missing file counts as empty bytes."""
    h = hashlib.sha256()
    for rel in files:
        top, _, sub = rel.partition("/")
        root = _root(top)
        try:
            data = (root / sub).read_bytes() if root is not None else b""
        except OSError:
            data = b""
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


@lru_cache(maxsize=1)
def _environment() -> dict:
    import importlib.metadata as md

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    dev = jax.devices()[0]
    return {
        "format": FORMAT, "facet": __version__,
        "versions": versions, "platform": dev.platform,
        "platform_version": dev.client.platform_version, "device_kind": dev.device_kind,
        "cpu": _cpu_flags(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
    }


@dataclass(frozen=True)
class ModelInfo:
    """What the calculator needs of a stored model before building it."""

    cutoff: float
    dtype: str
    supported_numbers: tuple[int, ...] | None
    #: ``[checkpoint array key, shape, dtype]`` of each weight input, in the program's order.
    leaves: tuple


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class ProgramStore:
    """The stored programs of one checkpoint in one dtype (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, checkpoint: str | os.PathLike,
                 dtype: str | None):
        self.folder = Path(folder)
        self.checkpoint = Path(checkpoint)
        digest = (self.checkpoint / "COMPLETE").read_text().strip()
        text = json.dumps({"env": _environment(), "checkpoint": digest, "dtype": str(dtype)},
                          sort_keys=True)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:40]

    def _warn(self, what: str) -> None:
        warnings.warn(f"stored program {what}; compiling instead (facet.program_cache)",
                      stacklevel=4)

    @property
    def info_path(self) -> Path:
        return self.folder / f"{self.key}.json"

    def program_path(self, shape: tuple[int, ...]) -> Path:
        return self.folder / f"{self.key}-{'-'.join(map(str, shape))}.prog"

    # -- the model's description ---------------------------------------------------------------
    def read_info(self) -> ModelInfo | None:
        """The stored :class:`ModelInfo`, or None (missing or not this key's: a warning)."""
        try:
            data = json.loads(self.info_path.read_text())
            if data.get("key") != self.key:
                raise ValueError("its key is another model's")
            if sources_digest(data["sources"]) != data["sources_sha256"]:
                return None  # Facet's sources changed since: stale, built afresh
            supported = data["supported_numbers"]
            return ModelInfo(
                cutoff=float(data["cutoff"]), dtype=str(np.dtype(data["dtype"])),
                supported_numbers=None if supported is None else tuple(map(int, supported)),
                leaves=tuple((str(k), tuple(s), str(d)) for k, s, d in data["leaves"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            self._warn(f"description {self.info_path} is unreadable ({err})")
            return None

    def write_info(self, model) -> ModelInfo | None:
        """Describe ``model`` (built from this checkpoint) and store it; None when a weight is
        not exactly a checkpoint array cast to the model's dtype (nothing is stored then)."""
        from flax import nnx

        flat, _ = jax.tree_util.tree_flatten_with_path(nnx.state(model))
        leaves = []
        with np.load(self.checkpoint / "arrays.npz") as npz:
            names = set(npz.files)
            for path, leaf in flat:
                value = np.asarray(leaf)
                key = next((f"{t}/{jax.tree_util.keystr(path)}" for t in ("ema", "rest")
                            if f"{t}/{jax.tree_util.keystr(path)}" in names), None)
                if key is None or not _bits_equal(npz[key].astype(value.dtype), value):
                    return None
                leaves.append((key, value.shape, value.dtype.name))
        supported = getattr(model, "supported_numbers", None)
        info = ModelInfo(
            cutoff=float(model.cutoff), dtype=np.dtype(model.dtype).name,
            supported_numbers=None if supported is None else tuple(
                int(z) for z in np.asarray(supported).tolist()),
            leaves=tuple(leaves),
        )
        files = loaded_sources()
        data = {"key": self.key, "sources": files, "sources_sha256": sources_digest(files),
                "cutoff": info.cutoff, "dtype": info.dtype,
                "supported_numbers": info.supported_numbers,
                "leaves": [[k, list(s), d] for k, s, d in info.leaves]}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.info_path, json.dumps(data).encode())
        except OSError as err:
            warnings.warn(f"cannot store programs in {self.folder} ({err})", stacklevel=3)
            return None
        return info

    def weights(self, info: ModelInfo) -> tuple:
        """The program's weight inputs, read from the (verified) checkpoint's arrays."""
        with np.load(self.checkpoint / "arrays.npz") as npz:
            arrays = [npz[k] for k, _, _ in info.leaves]
        out = []
        for arr, (key, shape, dtype) in zip(arrays, info.leaves, strict=True):
            if arr.shape != tuple(shape):
                raise ValueError(f"checkpoint array {key} has shape {arr.shape}, not {shape}")
            out.append(arr.astype(dtype))
        return tuple(jax.device_put(out))

    # -- programs ------------------------------------------------------------------------------
    def read_program(self, shape: tuple[int, ...], n_in: tuple[int, int]):
        """The stored program of ``shape`` (a ``jax.stages.Compiled`` called as
        ``f(weights, batch_leaves)``), or None (missing, or a mismatch: a warning)."""
        path = self.program_path(shape)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            self._warn(f"{path} is unreadable ({err})")
            return None
        try:
            if data[:8] != _MAGIC:
                raise ValueError("not a Facet program file")
            (size,) = struct.unpack("<Q", data[8:16])
            head = json.loads(data[16:16 + size])
            payload = data[16 + size:]
            if head.get("key") != self.key or tuple(head.get("shape", ())) != tuple(shape):
                raise ValueError("its header names another model or shape")
            if tuple(head.get("n_in", ())) != tuple(n_in):
                raise ValueError(f"it takes {head.get('n_in')} inputs, not {list(n_in)}")
            if hashlib.sha256(payload).hexdigest() != head.get("sha256"):
                raise ValueError("its payload is truncated or corrupted (checksum mismatch)")
            if sources_digest(head["sources"]) != head["sources_sha256"]:
                return None  # Facet's sources changed since: stale, compiled afresh
            from jax.experimental import serialize_executable

            in_tree = jax.tree.structure(((tuple(range(n_in[0])), tuple(range(n_in[1]))), {}))
            out_tree = jax.tree.structure(tuple(range(int(head["n_out"]))))
            # XLA:CPU's loader reports tuning-only features as a machine mismatch (a false
            # alarm, see facet.xla_stderr); other output passes through.
            with quiet_tuning_warnings():
                return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
        except Exception as err:  # noqa: BLE001 - any failure means: compile instead
            self._warn(f"{path} does not match ({' '.join(str(err).split())[:300]})")
            return None

    def write_program(self, shape: tuple[int, ...], compiled, n_in: tuple[int, int]) -> bool:
        """Store ``compiled`` (of ``shape``, ``n_in`` = weight and batch leaf counts; from
        :func:`fresh_compile`); a failure is a warning, never an error. True when stored."""
        from jax.experimental import serialize_executable

        try:
            payload, _, out_tree = serialize_executable.serialize(compiled)
            files = loaded_sources()
            head = json.dumps({
                "key": self.key, "shape": list(shape), "n_in": list(n_in),
                "sources": files, "sources_sha256": sources_digest(files),
                "n_out": out_tree.num_leaves, "sha256": hashlib.sha256(payload).hexdigest(),
            }).encode()
            self.folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.program_path(shape),
                          _MAGIC + struct.pack("<Q", len(head)) + head + payload)
        except (OSError, ValueError, NotImplementedError) as err:
            warnings.warn(f"cannot store the program of shape {shape} in {self.folder} ({err})",
                          stacklevel=3)
            return False
        return True

    def check_program(self, shape, n_in, args, expected) -> bool:
        """Load the program just stored for ``shape``, run it on ``args`` and compare with
        ``expected`` (the compiled program's outputs) bit for bit; a program that fails is
        deleted with a warning. True when it reproduced them."""
        loaded = self.read_program(shape, n_in)
        try:
            got = loaded(*args) if loaded is not None else None
            same = got is not None and len(got) == len(expected) and all(
                _bits_equal(np.asarray(a), np.asarray(b)) for a, b in zip(got, expected,
                                                                           strict=True))
        except Exception:  # noqa: BLE001 - a program that cannot run is not kept
            same = False
        if not same:
            self.program_path(shape).unlink(missing_ok=True)
            warnings.warn(f"the stored program of shape {shape} did not reproduce the compiled "
                          "one; not kept (facet.program_cache)", stacklevel=3)
        return same


def fresh_compile(lowered):
    """``lowered.compile()`` without JAX's persistent compilation cache. On XLA:CPU (jaxlib
    0.10) an executable loaded from that cache serializes without its machine code: a program
    stored from it fails when run ("Function ... not found"). None when JAX offers no way to
    bypass its cache (nothing is stored then)."""
    from jax.experimental.compilation_cache import compilation_cache

    try:
        from jax._src.config import enable_compilation_cache
    except ImportError:  # pragma: no cover - a JAX without this switch
        return None
    compilation_cache.reset_cache()  # JAX decides once per process whether to use the cache
    try:
        with enable_compilation_cache(False):
            return lowered.compile()
    finally:
        compilation_cache.reset_cache()
