"""Material properties of Si and Cu with the shipped Facet model, through matcalc and phonopy.

    pip install -e ".[properties]"
    python scripts/example_properties.py [--model default] [--out docs/properties]

Writes ``results.json`` (relaxed lattice, elastic tensor, bulk and shear moduli, EOS fits, Si
phonon frequencies at high-symmetry points) and ``si_phonons.png`` (Si phonon bands along the
seekpath path and the total DOS) to ``--out``. docs/properties.md explains each step.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="registered name or run directory")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--out", default="docs/properties", help="output directory")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.build import bulk
    from matcalc import ElasticityCalc, EOSCalc, PhononCalc, RelaxCalc

    from facet import FacetCalculator

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    calc = FacetCalculator(args.model, dtype=args.dtype)
    results: dict = {"model": args.model, "dtype": args.dtype}
    t0 = time.perf_counter()

    for name, atoms in {
        "Si": bulk("Si", "diamond", a=5.43),
        "Cu": bulk("Cu", "fcc", a=3.61),
    }.items():
        # 1. relax cell and positions (FIRE + FrechetCellFilter inside matcalc)
        relaxed = RelaxCalc(calc, fmax=1e-4, max_steps=1000).calc(atoms)
        structure = relaxed["final_structure"]
        # 2. elastic tensor: stress-strain fits over +-1 % normal and +-2 % shear strains;
        # Si's internal coordinates relax in each deformed cell (C44 needs it)
        elastic = ElasticityCalc(
            calc,
            norm_strains=[-0.01, -0.005, 0.005, 0.01],
            shear_strains=[-0.02, -0.01, 0.01, 0.02],
            relax_structure=False,
            relax_deformed_structures=True,
            fmax=1e-4,
            units_GPa=True,
        ).calc(structure)
        # 3. equation of state: Birch-Murnaghan fits over +-1 % and +-5 % linear strain
        eos = {
            strain: EOSCalc(
                calc, relax_structure=False, n_points=11, max_abs_strain=strain, fmax=1e-4
            ).calc(structure)
            for strain in (0.01, 0.05)
        }
        c = np.asarray(elastic["elastic_tensor"].voigt)
        results[name] = {
            # both are primitive fcc cells: conventional a = sqrt(2) x primitive length
            "a_conventional_A": round(float(structure.lattice.a * np.sqrt(2.0)), 4),
            "energy_per_atom_eV": float(relaxed["energy"]) / len(structure),
            "elastic_tensor_GPa": np.round(c, 2).tolist(),
            "C11_C12_C44_GPa": [round(float(c[0, 0]), 2), round(float(c[0, 1]), 2),
                                round(float(c[3, 3]), 2)],
            "bulk_modulus_vrh_GPa": round(float(elastic["bulk_modulus_vrh"]), 2),
            "shear_modulus_vrh_GPa": round(float(elastic["shear_modulus_vrh"]), 2),
            "eos_bulk_modulus_bm_GPa": {
                f"+-{int(s * 100)}%": round(float(r["bulk_modulus_bm"]), 2) for s, r in eos.items()
            },
            "eos_r2": {f"+-{int(s * 100)}%": float(r["r2_score_bm"]) for s, r in eos.items()},
        }
        print(name, json.dumps(results[name]), flush=True)

    # 4. Si phonons: phonopy finite displacements (0.01 A) in a 4x4x4 supercell of the
    # primitive cell (128 atoms), through matcalc, then bands and DOS with phonopy
    si = RelaxCalc(calc, fmax=1e-4, max_steps=1000).calc(bulk("Si", "diamond", a=5.43))
    ph = PhononCalc(
        calc,
        supercell_matrix=np.diag([4, 4, 4]),
        atom_disp=0.01,
        relax_structure=False,
        write_phonon=False,
        t_max=1000,
        t_step=100,
    ).calc(si["final_structure"])
    phonon = ph["phonon"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        phonon.auto_band_structure(npoints=61)
    bands = phonon.get_band_structure_dict()
    phonon.run_mesh([24, 24, 24])
    phonon.run_total_dos(sigma=0.1)
    dos = phonon.get_total_dos_dict()
    special = {"G": [0, 0, 0], "X": [0.5, 0, 0.5], "L": [0.5, 0.5, 0.5]}
    phonon.run_qpoints(list(special.values()))
    freqs = phonon.get_qpoints_dict()["frequencies"]
    temps = ph["thermal_properties"]["temperatures"]
    cv = ph["thermal_properties"]["heat_capacity"]
    results["Si_phonons"] = {
        "supercell": "4x4x4 primitive (128 atoms)",
        "frequencies_THz": {
            k: np.round(f, 3).tolist() for k, f in zip(special, freqs, strict=True)
        },
        # phonopy's thermal properties are per mole of primitive cells (Si2)
        "heat_capacity_300K_J_per_K_mol_Si2": round(float(np.interp(300.0, temps, cv)), 3),
    }

    fig, (ax, ax_dos) = plt.subplots(
        1, 2, figsize=(8, 4.2), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
    )
    # phonopy's labels: one per segment end, two where the path jumps (U|K)
    raw = [("Γ" if lbl in ("GAMMA", "G", "$\\Gamma$") else lbl) for lbl in
           phonon.band_structure.labels]
    connected = phonon.band_structure.path_connections
    ticks, labels, k = [], [], 0
    for seg, (dist, freq) in enumerate(zip(bands["distances"], bands["frequencies"], strict=True)):
        ax.plot(dist, freq, color="C0", lw=1.2)
        if seg == 0:
            ticks.append(dist[0])
            labels.append(raw[k])
            k += 1
        ticks.append(dist[-1])
        labels.append(raw[k])
        k += 1
        if not connected[seg] and seg + 1 < len(bands["distances"]):
            labels[-1] += "|" + raw[k]
            k += 1
    ax.set_xticks(ticks, labels)
    for t in ticks:
        ax.axvline(t, color="0.8", lw=0.6)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xlim(0, ticks[-1])
    ax.set_ylabel("frequency (THz)")
    ax.set_title(f"Si phonons, Facet model '{args.model}' (phonopy via matcalc)")
    ax_dos.plot(dos["total_dos"], dos["frequency_points"], color="C1")
    ax_dos.set_xlabel("DOS (states/THz)")
    ax_dos.set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(out / "si_phonons.png", dpi=120)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["Si_phonons"]), f"\n{results['seconds']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
