"""The suite's parallel defaults (tests/conftest.py): plain ``pytest`` runs one xdist worker per
usable physical core (at most MAX_WORKERS; one usable core runs in-process), whole files per
worker, each worker with its share of the threads and its own compile-cache folder; a worker
never starts workers of its own (it did once: every worker re-read the default ``-n auto``);
``-p no:xdist`` runs serially."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_PROBE = """
import json, os
from pathlib import Path

def _ppid(stat):
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):  # the process ended meanwhile
        return None


def _record(name):
    keys = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "NPROC", "FACET_COMPILE_CACHE")
    rec = {k: os.environ.get(k) for k in keys}
    # The process above the pytest run that ran this test (the test that started the run).
    grandparent = _ppid(Path(f"/proc/{os.getppid()}/stat"))
    # A worker that started workers of its own keeps them as its children while it runs tests.
    rec["children"] = sum(1 for p in Path("/proc").glob("[0-9]*/stat") if _ppid(p) == os.getpid())
    rec["run_by"] = "test" if os.getppid() == int(os.environ["OUTER_PID"]) else (
        "worker" if grandparent == int(os.environ["OUTER_PID"]) else "nested worker")
    Path(os.environ["PROBE_OUT"], name).write_text(json.dumps(rec))
"""


def _run(pytester, monkeypatch, *args, **env):
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                "PYTEST_XDIST_AUTO_NUM_WORKERS", "PYTEST_ADDOPTS", "NPROC", "FACET_COMPILE_CACHE",
                "FACET_TEST_SESSION_CACHE"):
        monkeypatch.delenv(var, raising=False)
    out = pytester.path / "records"
    out.mkdir(exist_ok=True)
    monkeypatch.setenv("PROBE_OUT", str(out))
    monkeypatch.setenv("OUTER_PID", str(os.getpid()))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    pytester.makeconftest((Path(__file__).with_name("conftest.py")).read_text())
    pytester.makepyfile(probe_util=_PROBE)
    pytester.makepyfile(
        test_a="from probe_util import _record\ndef test_a():\n    _record('a')\n",
        test_b="from probe_util import _record\ndef test_b():\n    _record('b')\n",
    )
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=300)
    assert res.ret == 0, res.stdout.str()[-3000:]
    return [json.loads((out / n).read_text()) for n in ("a", "b")]


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux CPU affinity")
def test_default_run_uses_one_worker_per_usable_core(pytester, monkeypatch):
    psutil = pytest.importorskip("psutil")
    usable = len(os.sched_getaffinity(0))
    workers = min(psutil.cpu_count(logical=False) or usable, usable, 8)
    recs = _run(pytester, monkeypatch)
    if workers == 1:  # one usable core (e.g. under `taskset -c 0`): no worker processes
        assert {r["run_by"] for r in recs} == {"test"}
    else:
        assert {r["PYTEST_XDIST_WORKER_COUNT"] for r in recs} == {str(workers)}
        assert all(r["NPROC"] == str(max(1, usable // workers)) for r in recs)
        assert {r["run_by"] for r in recs} == {"worker"} and {r["children"] for r in recs} == {0}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux CPU affinity")
def test_two_workers_split_files_threads_and_caches(pytester, monkeypatch):
    recs = _run(pytester, monkeypatch, PYTEST_XDIST_AUTO_NUM_WORKERS="2")
    assert {r["PYTEST_XDIST_WORKER"] for r in recs} <= {"gw0", "gw1"}
    assert {r["PYTEST_XDIST_WORKER_COUNT"] for r in recs} == {"2"}
    # Workers run tests themselves; before the guard each worker started two more.
    assert {r["run_by"] for r in recs} == {"worker"} and {r["children"] for r in recs} == {0}
    assert all(r["NPROC"] == str(max(1, len(os.sched_getaffinity(0)) // 2)) for r in recs)
    for r in recs:  # <session folder>/<worker id>, one per worker
        assert Path(r["FACET_COMPILE_CACHE"]).name == r["PYTEST_XDIST_WORKER"]
    # Without xdist the same files run serially in one process.
    recs = _run(pytester, monkeypatch, "-p", "no:xdist")
    assert {r["run_by"] for r in recs} == {"test"}
    assert all(r["PYTEST_XDIST_WORKER"] is None and r["NPROC"] is None for r in recs)
