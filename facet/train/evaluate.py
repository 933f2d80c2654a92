"""``facet evaluate``: errors of a trained model on any dataset, per element, with parity plots.

Metrics (same definitions as validation, :mod:`facet.train.loss`): energy per atom MAE/RMSE in
meV/atom, force-component MAE/RMSE in meV/A, stress-component MAE/RMSE in meV/A^3. The
per-element breakdown gives, for every element ``Z``: the force MAE over the components of atoms
of ``Z``, and the energy-per-atom MAE over the structures that contain ``Z``.

Outputs in ``out_dir``: ``metrics.json`` (overall and per element), ``per_element.csv`` and
``parity_energy.png``, ``parity_forces.png``, ``parity_stress.png`` (predicted vs reference).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from facet.data.batch import batches_by_budget

from .data import material_of
from .loss import error_sums, finalize_metrics

__all__ = ["predict_dataset", "compute_metrics", "per_element_metrics", "group_metrics",
           "parity_plots", "evaluate"]

_SYMBOLS = None


def _symbol(z: int) -> str:
    global _SYMBOLS
    if _SYMBOLS is None:
        from ase.data import chemical_symbols

        _SYMBOLS = chemical_symbols
    return _SYMBOLS[z]


def predict_dataset(model, graphs: Sequence, budget: tuple[int, int, int], *,
                    predict_fn: Callable | None = None, dtype=np.float32) -> dict:
    """Predictions and references for every structure, in order (NumPy, eV units).

    Returns ``energy``/``energy_ref`` (per structure, eV), ``n_atoms``, ``forces``/
    ``forces_ref`` (per atom), ``numbers``, ``stress``/``stress_ref`` (per structure, 3 x 3),
    masks ``has_energy``, ``has_forces`` (per atom), ``has_stress``, and ``error_sums``
    accumulated exactly as in validation.
    """
    if predict_fn is None:
        from facet.physics import predict as predict_fn
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, batch):
        m = nnx.merge(graphdef, state)
        p = predict_fn(m, batch, forces=True, stress=True)
        return p.energy, p.forces, p.stress, error_sums(p, batch)

    n_max, e_max, g_max = budget
    n_max = max(n_max, max(g.n_node for g in graphs) + 1)
    e_max = max(e_max, max(g.n_edge for g in graphs))
    cols: dict[str, list] = {k: [] for k in (
        "energy", "energy_ref", "n_atoms", "has_energy", "forces", "forces_ref", "numbers",
        "has_forces", "stress", "stress_ref", "has_stress")}
    sums = None
    for b in batches_by_budget(graphs, max_nodes=n_max, max_edges=e_max, max_graphs=g_max,
                               dtype=dtype):
        e, f, s, es = run(state, jax.tree.map(jnp.asarray, b))
        es = {k: np.asarray(v, np.float64) for k, v in es.items()}
        sums = es if sums is None else {k: sums[k] + es[k] for k in sums}
        g, n = np.asarray(b.graph_mask), np.asarray(b.node_mask)
        cols["energy"].append(np.asarray(e)[g])
        cols["energy_ref"].append(np.asarray(b.energy)[g])
        cols["n_atoms"].append(np.asarray(b.n_node)[g])
        cols["has_energy"].append(np.asarray(b.energy_mask)[g])
        cols["forces"].append(np.asarray(f)[n])
        cols["forces_ref"].append(np.asarray(b.forces)[n])
        cols["numbers"].append(np.asarray(b.numbers)[n])
        cols["has_forces"].append(np.asarray(b.forces_mask)[np.asarray(b.node_graph)][n])
        cols["stress"].append(np.asarray(s)[g])
        cols["stress_ref"].append(np.asarray(b.stress)[g])
        cols["has_stress"].append(np.asarray(b.stress_mask)[g])
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["error_sums"] = sums
    return out


def compute_metrics(pred: dict) -> dict[str, float]:
    """Overall metrics (meV units) from :func:`predict_dataset`'s accumulated error sums."""
    return finalize_metrics(pred["error_sums"])


def _abs_errors_mev(pred: dict) -> tuple[np.ndarray, np.ndarray]:
    """Absolute errors in meV: energy per atom (one per structure) and force components (one
    row per atom)."""
    e_err = 1e3 * np.abs(pred["energy"] - pred["energy_ref"]) / pred["n_atoms"]
    return e_err, 1e3 * np.abs(pred["forces"] - pred["forces_ref"])


def per_element_metrics(pred: dict) -> dict[str, dict[str, float]]:
    """``{symbol: {forces_mae, forces_count, energy_mae, energy_count}}`` in meV units."""
    out: dict[str, dict[str, float]] = {}
    z_atoms = pred["numbers"]
    e_err, ferr = _abs_errors_mev(pred)
    # structure index of every atom, to find which structures contain an element
    owner = np.repeat(np.arange(pred["n_atoms"].size), pred["n_atoms"])
    for z in np.unique(z_atoms):
        row: dict[str, float] = {}
        m = (z_atoms == z) & pred["has_forces"]
        if m.any():
            row["forces_mae"] = float(ferr[m].mean())
            row["forces_count"] = int(3 * m.sum())
        structs = np.unique(owner[z_atoms == z])
        structs = structs[pred["has_energy"][structs]]
        if structs.size:
            row["energy_mae"] = float(e_err[structs].mean())
            row["energy_count"] = int(structs.size)
        out[_symbol(int(z))] = row
    return out


def group_metrics(pred: dict, groups: Sequence[str]) -> dict[str, dict[str, float]]:
    """Errors per group of structures (``groups[i]`` labels structure ``i``), meV units.

    For each group: ``structures``; ``energy_mae`` and ``energy_median`` (absolute error of the
    energy per atom over the structures with an energy label); ``forces_mae`` and
    ``forces_median`` (over the labelled force components of the group's atoms);
    ``stress_mae`` (over the components of the structures with a stress label, absent if
    none). The median sits beside the mean because the errors of a distilled model are
    heavy-tailed: a few structures far from the data can carry most of an MAE.
    """
    groups = np.asarray(groups)
    n_atoms = pred["n_atoms"]
    if groups.shape != n_atoms.shape:
        raise ValueError(f"{groups.size} group labels for {n_atoms.size} structures")
    e_err, f_err = _abs_errors_mev(pred)
    s_err = 1e3 * np.abs(pred["stress"] - pred["stress_ref"]).reshape(n_atoms.size, -1)
    atom_group = np.repeat(groups, n_atoms)
    out: dict[str, dict[str, float]] = {}
    for name in sorted(set(groups.tolist())):
        in_g = groups == name
        row: dict[str, float] = {"structures": int(in_g.sum())}
        e = e_err[in_g & pred["has_energy"]]
        if e.size:
            row["energy_mae"], row["energy_median"] = float(e.mean()), float(np.median(e))
        f = f_err[(atom_group == name) & pred["has_forces"]]
        if f.size:
            row["forces_mae"], row["forces_median"] = float(f.mean()), float(np.median(f))
        s = s_err[in_g & pred["has_stress"]]
        if s.size:
            row["stress_mae"] = float(s.mean())
        out[name] = row
    return out


def parity_plots(pred: dict, out_dir: str | Path) -> list[Path]:
    """Predicted vs reference scatter plots (PNG) for energy per atom, forces and stress."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    gpa = 160.21766208  # eV/A^3 in GPa
    # (name, predicted, reference, mask, axis label, axis unit, metric factor, metric unit):
    # the title gives the MAE in the axes' unit, then in the unit of metrics.json.
    specs = [
        ("energy", pred["energy"] / pred["n_atoms"], pred["energy_ref"] / pred["n_atoms"],
         pred["has_energy"], "energy per atom", "eV/atom", 1e3, "meV/atom"),
        ("forces", pred["forces"], pred["forces_ref"], pred["has_forces"],
         "force component", "eV/A", 1e3, "meV/A"),
        ("stress", pred["stress"] * gpa, pred["stress_ref"] * gpa,
         pred["has_stress"], "stress component", "GPa", 1e3 / gpa, "meV/A^3"),
    ]
    paths = []
    for name, p, r, mask, label, unit, to_metric, metric_unit in specs:
        p, r = p[mask].ravel(), r[mask].ravel()
        fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
        if p.size:
            lo, hi = float(min(p.min(), r.min())), float(max(p.max(), r.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.scatter(r, p, s=4, alpha=0.5)
            mae = float(np.abs(p - r).mean())
            ax.set_title(f"{name}: MAE {mae:.3g} {unit} ({to_metric * mae:.3g} {metric_unit}, "
                         f"n={p.size})", fontsize=9)
        else:
            ax.set_title(f"{name}: no labels")
        ax.set_xlabel(f"reference {label} ({unit})")
        ax.set_ylabel(f"predicted {label} ({unit})")
        fig.tight_layout()
        path = out_dir / f"parity_{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def evaluate(model_path: str | Path, data: Sequence[str], out_dir: str | Path, *,
             energy_label: str | None = None, factory: Callable | None = None,
             predict_fn: Callable | None = None, graphs: Sequence | None = None,
             group_of: Callable[[str], str] | None = None, report=print) -> dict:
    """Evaluate a trained model (run or checkpoint directory) on ``data``; write the outputs.

    ``group_of`` maps a structure's material (the part of its key before ``/``) to a group
    label; with it, ``result["per_group"]`` holds :func:`group_metrics` of those groups.

    Structures with elements the model does not support (:mod:`facet.elements`) are refused
    with :class:`facet.errors.InputError` naming them, before anything is computed or written.
    """
    import yaml

    from facet.elements import attach_supported, check_supported
    from facet.errors import InputError

    from .data import read_graphs
    from .model_io import load_model

    try:
        model, cfg, ckpt = load_model(model_path, factory=factory, report=report)
    except (yaml.YAMLError, KeyError, TypeError) as err:
        msg = " ".join(str(err).split())
        raise InputError(f"cannot load a Facet model from {model_path}: {msg}") from err
    attach_supported(model, ckpt)
    if graphs is None:
        for p in data:
            if not Path(p).exists():
                raise FileNotFoundError(f"--data {p} does not exist")
        cutoff = float(cfg.data.cutoff if cfg.data.cutoff is not None else model.cutoff)
        graphs = read_graphs(data, cutoff, energy_label or cfg.data.energy_label)
    seen: set[int] = set()
    for g in graphs:
        seen.update(np.unique(np.asarray(g.numbers)).tolist())
    check_supported(model, sorted(seen), f"--data {' '.join(map(str, data))}")
    dtype = np.float32 if cfg.model.dtype == "float32" else np.float64
    budget = (cfg.data.max_nodes, cfg.data.max_edges, cfg.data.max_graphs)
    pred = predict_dataset(model, graphs, budget, predict_fn=predict_fn, dtype=dtype)
    overall = compute_metrics(pred)
    per_el = per_element_metrics(pred)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {"model": str(ckpt), "data": [str(p) for p in data], "n_structures": len(graphs),
              "metrics": overall, "per_element": per_el}
    if group_of is not None:
        result["per_group"] = group_metrics(
            pred, [group_of(material_of(g.key or "")) for g in graphs])
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=1))
    with open(out_dir / "per_element.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["element", "forces_mae_meV_A", "forces_count", "energy_mae_meV_atom",
                    "energy_count"])
        for sym, row in per_el.items():
            w.writerow([sym, row.get("forces_mae", ""), row.get("forces_count", 0),
                        row.get("energy_mae", ""), row.get("energy_count", 0)])
    result["plots"] = [str(p) for p in parity_plots(pred, out_dir)]
    return result
