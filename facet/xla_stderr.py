"""Keep XLA:CPU's false "machine type doesn't match" alarm off the user's terminal.

When XLA:CPU (jaxlib 0.10) loads a compiled program, from JAX's persistent compilation cache
(:mod:`facet.compile_cache`) or from Facet's stored programs (:mod:`facet.program_cache`), its
AOT loader compares the target features recorded at compile time with the host's. On many x86
CPUs (AVX-512 Intel and AMD Zen 4 among them) LLVM records the tuning *preferences*
``+prefer-no-gather`` and ``+prefer-no-scatter``, which are not instruction-set features and so
never appear in the host's list. Each load then writes, for each of the two, a line such as::

    E1207 10:11:48.008809 30784 cpu_aot_loader.cc:195] Loading XLA:CPU AOT result. Target
    machine feature +prefer-no-gather is not supported on the host machine. [...] This could
    lead to execution errors such as SIGILL.

although the program was compiled on this very machine and runs correctly (the same numbers as
a fresh compilation). Upstream: jax-ml/jax issue #38445 and openxla/xla issue #44565. jaxlib
offers no switch for this one message (``TF_CPP_MIN_LOG_LEVEL`` would hide every XLA error,
``--xla_cpu_max_isa`` changes the machine code).

:func:`quiet_tuning_warnings` captures file descriptor 2 into a temporary file around a load
and writes everything back to it afterwards except lines that are exactly this message for
exactly one of these two tuning features. A real mismatch (any other feature, e.g.
``+avx512f`` on a host without it) or any other output reaches stderr unchanged, in order, once
the load returns (or raises). The window holds only the load, never the program's execution
(a process killed inside the load itself would lose what the load had written).
:func:`install_cache_filter` applies it to JAX's persistent-cache loads (on CPU);
:meth:`facet.program_cache.ProgramStore.read_program` to its own. The lines dropped are counted
(:func:`suppressed_count`) and mentioned at ``logging.DEBUG`` (logger ``facet.xla_stderr``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

__all__ = ["TUNING_FEATURES", "filter_lines", "install_cache_filter", "is_tuning_only",
           "quiet_tuning_warnings", "suppressed_count"]

log = logging.getLogger(__name__)

#: LLVM tuning preferences that XLA:CPU's loader mistakes for required host features.
TUNING_FEATURES = ("+prefer-no-gather", "+prefer-no-scatter")

_LINE = re.compile(
    rb"cpu_aot_loader\.cc:\d+\] Loading XLA:CPU AOT result\. Target machine feature "
    rb"(?P<feature>\S+) is not\s+supported on the host machine\."
)

_lock = threading.Lock()
_depth = 0  # open windows (all threads): fd 2 is captured while > 0
_saved_fd: int | None = None
_capture = None  # the temporary file fd 2 points at
_suppressed = 0


def is_tuning_only(line: bytes | str) -> bool:
    """Whether ``line`` is XLA:CPU's AOT-loader mismatch message for a tuning-only feature
    (:data:`TUNING_FEATURES`), and nothing else."""
    if isinstance(line, str):
        line = line.encode("utf-8", "surrogateescape")
    m = _LINE.search(line)
    return m is not None and m["feature"].decode("ascii", "replace") in TUNING_FEATURES


def filter_lines(lines) -> tuple[list[bytes], int]:
    """``(kept, dropped)``: the lines of ``lines`` (bytes, each with its line end) that are not
    :func:`is_tuning_only`, unchanged and in order, and how many were dropped."""
    kept, dropped = [], 0
    for line in lines:
        if is_tuning_only(line):
            dropped += 1
        else:
            kept.append(line)
    return kept, dropped


def suppressed_count() -> int:
    """Lines dropped by :func:`quiet_tuning_warnings` in this process so far."""
    return _suppressed


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):  # C stdio buffers (stderr is unbuffered, normally)
        _libc().fflush(None)


@functools.cache
def _libc():
    import ctypes

    return ctypes.CDLL(None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _begin() -> None:
    global _saved_fd, _capture
    _flush_std()
    capture = tempfile.TemporaryFile(prefix="facet-stderr-")  # a file, not a pipe: never fills
    try:
        saved = os.dup(2)
    except OSError:
        capture.close()
        raise
    try:
        os.dup2(capture.fileno(), 2)
    except OSError:
        os.close(saved)
        capture.close()
        raise
    _saved_fd, _capture = saved, capture


def _end() -> int:
    """Restore fd 2 and write the captured output back to it, less the tuning-only lines."""
    global _saved_fd, _capture
    saved, capture = _saved_fd, _capture
    _saved_fd = _capture = None
    _flush_std()
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)
    dropped = 0
    with capture:
        capture.seek(0)
        for line in capture:  # line by line: a large capture is never held whole in memory
            if is_tuning_only(line):
                dropped += 1
            else:
                with contextlib.suppress(OSError):
                    _write_all(2, line)
    return dropped


@contextlib.contextmanager
def quiet_tuning_warnings() -> Iterator[None]:
    """Capture fd 2 while the block runs; on leaving (normally or by an exception) restore it and
    write back everything captured except XLA:CPU's tuning-only mismatch lines (see the module
    docstring). Thread-safe: windows of several threads share one capture, which is written back
    when the last of them closes (other threads' stderr output in the meantime is delayed, not
    lost). Where fd 2 cannot be captured (closed, no temporary file), the block runs as is."""
    global _depth, _suppressed
    with _lock:
        active = True
        if _depth == 0:
            try:
                _begin()
            except OSError:
                active = False
        if active:
            _depth += 1
    try:
        yield
    finally:
        if active:
            with _lock:
                _depth -= 1
                dropped = _end() if _depth == 0 else 0
                _suppressed += dropped
            if dropped:
                log.debug(
                    "dropped %d line(s) of XLA:CPU's AOT loader naming only the tuning features "
                    "%s as unsupported by the host (a false alarm: jax-ml/jax#38445, "
                    "openxla/xla#44565); %d in this process", dropped,
                    " and ".join(TUNING_FEATURES), _suppressed)


def install_cache_filter() -> bool:
    """Run JAX's persistent-cache loads on CPU inside :func:`quiet_tuning_warnings` (by wrapping
    ``jax._src.compilation_cache.get_executable_and_time``, the load alone: no compilation and
    no execution happens in it). Idempotent; False when this JAX has no such function (nothing
    changes then, and the message shows as before).

    A private hook, because JAX has no public one around a cache load (its cache can only be
    switched on or off, and the message is written by C++ code below Python's ``warnings`` and
    ``logging``). Checked with jax and jaxlib 0.10.1, where ``jax._src.compiler`` calls
    ``compilation_cache.get_executable_and_time(cache_key, compile_options, backend,
    executable_devices)`` through the module attribute. It fails safe: a JAX without the module
    or the function gets no filter and no error, and the wrapper hands any arguments through
    unchanged (it filters only where it finds a CPU ``backend``, by position or name)."""
    try:
        from jax._src import compilation_cache as cc
    except Exception:  # noqa: BLE001 - a JAX without (an importable) module: no filter
        return False
    original = getattr(cc, "get_executable_and_time", None)
    if not callable(original):
        return False
    if getattr(original, "_facet_quiet", False):
        return True

    @functools.wraps(original)
    def get_executable_and_time(*args, **kwargs):
        backend = args[2] if len(args) > 2 else kwargs.get("backend")
        if getattr(backend, "platform", None) != "cpu":
            return original(*args, **kwargs)
        with quiet_tuning_warnings():
            return original(*args, **kwargs)

    get_executable_and_time._facet_quiet = True
    cc.get_executable_and_time = get_executable_and_time
    return True
