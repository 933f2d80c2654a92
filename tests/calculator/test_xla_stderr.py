"""XLA:CPU's false "machine type doesn't match" alarm (facet.xla_stderr, jax-ml/jax#38445,
openxla/xla#44565): a fresh process that loads a stored program or a JAX cache entry writes no
``cpu_aot_loader`` line for the tuning-only features, gets the same forces bit for bit as a
process without any cache, and every other stderr line still reaches the user unchanged."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from facet import xla_stderr
from facet.xla_stderr import filter_lines, is_tuning_only, quiet_tuning_warnings

_FEATURES = ("[+64bit,+avx,+avx2,+avx512f,+prefer-no-gather,+prefer-no-scatter,+sse4.2] vs host "
             "machine features: [64bit,avx,avx2,avx512f,sse4.2]")


def _aot_line(feature: str) -> bytes:
    """XLA:CPU's message as jaxlib 0.10.1 writes it (note the double space)."""
    return (f"E1207 10:11:48.008809   30784 cpu_aot_loader.cc:195] Loading XLA:CPU AOT result. "
            f"Target machine feature {feature} is not  supported on the host machine. Machine "
            f"type used for XLA:CPU compilation doesn't match the machine type for execution. "
            f"Compile machine features: {_FEATURES}. This could lead to execution errors such "
            f"as SIGILL.\n").encode()


GATHER, SCATTER = _aot_line("+prefer-no-gather"), _aot_line("+prefer-no-scatter")
REAL = _aot_line("+avx512f")  # a real instruction-set mismatch: must reach the user
OTHER = [b"E1207 10:11:48.1 30784 cpu_client.cc:12] some other XLA error\n",
         b"Traceback (most recent call last):\n",
         b"W1207 prefer-no-gather mentioned elsewhere in a warning\n",
         "UserWarning: caf\u00e9 \u00c5\n".encode(),
         b"a last line without its newline"]


def test_filter_drops_only_the_tuning_feature_lines():
    lines = [OTHER[0], GATHER, REAL, SCATTER, *OTHER[1:]]
    kept, dropped = filter_lines(lines)
    assert dropped == 2
    assert kept == [OTHER[0], REAL, *OTHER[1:]]  # unchanged, in order
    assert is_tuning_only(GATHER.decode()) and is_tuning_only(SCATTER)
    for feature in ("+avx512f", "+prefer-no-gather2", "-prefer-no-gather", "+amx-tile"):
        assert not is_tuning_only(_aot_line(feature)), feature
    # The same feature named in another message (not the loader's mismatch line) is kept.
    assert not is_tuning_only(GATHER.replace(b"cpu_aot_loader", b"cpu_compiler"))


def _emit(*chunks: bytes) -> None:
    for chunk in chunks:
        os.write(2, chunk)


def test_window_passes_other_output_through_at_fd_level(capfd, caplog, monkeypatch):
    before = xla_stderr.suppressed_count()
    # sys.stderr as in a terminal session: a buffered text stream over fd 2.
    stream = open(2, "w", closefd=False, buffering=1 << 16)  # noqa: SIM115
    monkeypatch.setattr(sys, "stderr", stream)
    print("before", file=sys.stderr)  # still buffered when the window opens
    with caplog.at_level(logging.DEBUG, logger="facet.xla_stderr"):
        with quiet_tuning_warnings():
            _emit(OTHER[0], GATHER)
            print("python-level line", file=sys.stderr)  # buffered: flushed before restore
            _emit(REAL, SCATTER, *OTHER[1:])
    _emit(b"\nafter\n")
    err = capfd.readouterr().err.encode()
    assert err == b"".join([b"before\n", OTHER[0], REAL, *OTHER[1:], b"python-level line\n",
                            b"\nafter\n"])
    assert xla_stderr.suppressed_count() == before + 2
    (record,) = [r for r in caplog.records if r.name == "facet.xla_stderr"]
    assert record.levelno == logging.DEBUG and "dropped 2 line(s)" in record.getMessage()
    assert "38445" in record.getMessage()


def test_window_restores_stderr_on_exceptions_and_large_output(capfd):
    big = b"x" * 999 + b"\n"
    with pytest.raises(RuntimeError, match="inside"):
        with quiet_tuning_warnings():
            _emit(*([big] * 3000), GATHER, REAL)  # 3 MB: more than any pipe holds
            raise RuntimeError("inside")
    _emit(b"after\n")  # fd 2 is the terminal again
    err = capfd.readouterr().err.encode()
    assert err == big * 3000 + REAL + b"after\n"


def test_nested_and_concurrent_windows_lose_nothing(capfd):
    started, release = threading.Event(), threading.Event()

    def other():
        with quiet_tuning_warnings():
            _emit(b"thread start\n", GATHER)
            started.set()
            release.wait(10)
            _emit(b"thread end\n")

    t = threading.Thread(target=other)
    with quiet_tuning_warnings():
        t.start()
        assert started.wait(10)
        with quiet_tuning_warnings():  # nested
            _emit(b"main\n", SCATTER)
        release.set()
        t.join(10)
    _emit(b"after\n")
    assert capfd.readouterr().err == "thread start\nmain\nthread end\nafter\n"


_WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    from ase.build import bulk
    from facet import FacetCalculator
    hits = []
    jax.monitoring.register_event_listener(
        lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)
    out = []
    for store in sys.argv[2].split(","):  # one calculator for each program_cache setting
        calc = FacetCalculator(model=sys.argv[1], program_cache=store == "1")
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=3)
        atoms.calc = calc
        n = len(hits)
        out.append({"forces": atoms.get_forces().tobytes().hex(),
                    "stress": atoms.get_stress().tobytes().hex(),
                    "stored": [flat for _, flat in calc._programs.values()],
                    "jax_cache_hits": len(hits) - n})
    print(json.dumps(out))
    """
)


def _run(ckpt, cache, stores: str) -> tuple[list[dict], str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "FACET_", "TF_CPP"))}
    env.update({"JAX_PLATFORMS": "cpu", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "FACET_COMPILE_CACHE": str(cache)})
    out = subprocess.run([sys.executable, "-c", _WORKER, str(ckpt), stores], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_fresh_processes_loading_from_the_caches_print_no_false_alarm(tiny_ckpt, tmp_path):
    cache = tmp_path / "cache"
    # 1: an empty cache. Without the program store: a fresh compilation (the reference
    # numbers), written to JAX's cache. With it: compiled afresh, stored, and reloaded once to
    # check it (an XLA:CPU load already).
    (plain, storing), err1 = _run(tiny_ckpt, cache, "0,1")
    assert plain["stored"] == [] and plain["jax_cache_hits"] == 0
    assert storing["stored"] == [False]
    # 2: a fresh process. Without the program store: the program loaded from JAX's cache; with
    # it: the stored program loaded.
    (from_jax, stored), err2 = _run(tiny_ckpt, cache, "0,1")
    assert from_jax["jax_cache_hits"] >= 1 and stored["stored"] == [True]
    for err in (err1, err2):
        assert "cpu_aot_loader" not in err and "prefer-no-" not in err, err[-2000:]
    for res in (storing, from_jax, stored):
        assert {q: res[q] for q in ("forces", "stress")} == {
            q: plain[q] for q in ("forces", "stress")}  # bit for bit


def test_the_compile_cache_switch_installs_the_filter(monkeypatch):
    """Every user of the cache (the calculator, ``facet train``, ``facet md``/``relax``) turns
    it on through enable_compile_cache, which wraps JAX's cache load (on CPU only)."""
    import jax
    from jax._src import compilation_cache as cc

    from facet.compile_cache import enable_compile_cache

    raw = getattr(cc.get_executable_and_time, "__wrapped__", cc.get_executable_and_time)
    monkeypatch.setattr(cc, "get_executable_and_time", raw)
    assert enable_compile_cache(False) is None and cc.get_executable_and_time is raw
    assert enable_compile_cache() is not None  # the session's folder (tests/conftest.py)
    assert jax.config.jax_compilation_cache_dir
    assert getattr(cc.get_executable_and_time, "_facet_quiet", False)
    wrapped = cc.get_executable_and_time
    assert xla_stderr.install_cache_filter() and cc.get_executable_and_time is wrapped


def test_without_jax_s_private_hook_nothing_is_installed_and_nothing_raises(monkeypatch):
    """A JAX without ``get_executable_and_time`` (or without its module) gets no filter, and
    the compile cache is still switched on without an error."""
    from jax._src import compilation_cache as cc

    from facet.compile_cache import enable_compile_cache

    monkeypatch.delattr(cc, "get_executable_and_time")
    assert xla_stderr.install_cache_filter() is False
    assert not hasattr(cc, "get_executable_and_time")
    assert enable_compile_cache() is not None
    import jax._src

    monkeypatch.delattr(jax._src, "compilation_cache")  # and the module cannot be imported:
    monkeypatch.setitem(sys.modules, "jax._src.compilation_cache", None)
    assert xla_stderr.install_cache_filter() is False


def test_the_wrapper_hands_any_arguments_through(monkeypatch):
    """The wrapped load filters only where it finds a CPU backend (third argument or
    ``backend=``) and otherwise calls JAX's function with the arguments as given."""
    from types import SimpleNamespace

    from jax._src import compilation_cache as cc

    def fake(*args, **kwargs):
        return args, kwargs, xla_stderr._depth  # open capture windows during the load

    monkeypatch.setattr(cc, "get_executable_and_time", fake)
    assert xla_stderr.install_cache_filter() is True
    load, cpu, gpu = cc.get_executable_and_time, SimpleNamespace(platform="cpu"), object()
    assert load.__wrapped__ is fake
    assert load("k", "o", cpu, "d") == (("k", "o", cpu, "d"), {}, 1)
    assert load("k", "o", backend=cpu) == (("k", "o"), {"backend": cpu}, 1)
    assert load("k", "o", gpu, "d") == (("k", "o", gpu, "d"), {}, 0)
    assert load("k") == (("k",), {}, 0)  # a future signature: passed through, not refused
    assert xla_stderr._depth == 0


def test_facet_imports_and_runs_in_a_process_whose_jax_lacks_the_hook(tmp_path):
    code = textwrap.dedent("""
        from jax._src import compilation_cache as cc
        del cc.get_executable_and_time
        import jax.numpy as jnp
        import facet
        from facet.compile_cache import enable_compile_cache
        from facet.xla_stderr import install_cache_filter
        print(enable_compile_cache(), install_cache_filter(), float(jnp.arange(4.0).sum()))
    """)
    env = dict(os.environ, FACET_COMPILE_CACHE=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == [str(tmp_path / "cache"), "False", "6.0"]
