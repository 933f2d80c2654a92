"""Start-up of the calculator in a fresh process (issue 18): imports, ``FacetCalculator(model=
"default")`` construction, and the first forces + stress of a 16-atom cell (trace, lowering,
compilation or persistent-cache load, run), as wall and process-CPU seconds; one JSON line.

    FACET_COMPILE_CACHE=/tmp/facet-cache taskset -c 0 python scripts/startup_time.py

Run it several times: the first run with an empty cache folder compiles and stores the program,
later runs load it (from Facet's program store, facet/program_cache.py, or with
``FACET_PROGRAM_CACHE=0`` from JAX's compilation cache after tracing and lowering). Trace,
lowering, compile and cache-load seconds are JAX's own monitoring events (wall time) of the
first call; ``network_imported`` says whether Flax and e3nn-jax were imported at all. The
imports are what a user's script imports (JAX, ASE, ``from facet import FacetCalculator``);
what the calculator imports later counts in construction or the first call.
"""

import json
import sys
import time

W, C = time.perf_counter, time.process_time
w0, c0 = W(), C()
import jax  # noqa: E402
from ase.build import bulk  # noqa: E402

from facet import FacetCalculator  # noqa: E402

w1, c1 = W(), C()
events: dict[str, float] = {}


def _listener(event, duration, **kw):
    key = event.rsplit("/", 1)[-1]
    events[key] = events.get(key, 0.0) + duration


jax.monitoring.register_event_duration_secs_listener(_listener)
calc = FacetCalculator(model="default")
w2, c2 = W(), C()
events.clear()
atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (1, 1, 2)
atoms.rattle(0.05, seed=1)
atoms.calc = calc
atoms.get_forces()
atoms.get_stress()
w3, c3 = W(), C()
atoms.rattle(0.01, seed=2)
atoms.get_forces()
atoms.get_stress()
w4 = W()
row = {
    "imports": w1 - w0, "construct": w2 - w1, "first_call": w3 - w2, "total": w3 - w0,
    "second_call": w4 - w3, "cpu_imports": c1 - c0, "cpu_construct": c2 - c1,
    "cpu_first_call": c3 - c2, "cpu_total": c3 - c0,
    "trace": events.get("jaxpr_trace_duration", 0.0),
    "lower": events.get("jaxpr_to_mlir_module_duration", 0.0),
    "compile_or_load": events.get("backend_compile_duration", 0.0),
    "cache_load": events.get("cache_retrieval_time_sec", 0.0),
    "cache_dir": jax.config.jax_compilation_cache_dir,
    "stored_program": bool(calc._programs) and all(flat for _, flat in calc._programs.values()),
    "network_imported": "e3nn_jax" in sys.modules,
}
print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
