"""``facet info``: versions and devices, and statistics of a dataset or preprocessed directory.

The output is a list of *sections*; each is a function ``(args) -> list[str] | None`` listed
in :data:`SECTIONS` (``None`` or an empty list prints nothing). Other parts of Facet add their own
sections with :func:`register_section` (e.g. parameter counts of model presets).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

NAME = "info"
HELP = "print versions and devices, and statistics of a dataset file or preprocessed directory"

Section = Callable[[argparse.Namespace], "list[str] | None"]


def register_section(title: str, fn: Section) -> Section:
    """Add a section (replacing one of the same title)."""
    SECTIONS[:] = [(t, f) for t, f in SECTIONS if t != title]
    SECTIONS.append((title, fn))
    return fn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", nargs="?", default=None, help="a preprocessed directory or a dataset file"
    )
    parser.add_argument("--json", action="store_true", help="print the dataset statistics as JSON")
    parser.add_argument(
        "--presets", action="store_true", help="also list the model presets with parameter counts"
    )
    parser.add_argument(
        "--label", default="uncorrected_total_energy", help="MPTrj energy label for a raw file"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="also describe a model (registered name, checkpoint or run folder): cutoff, dtype "
        "and the elements it supports",
    )


def versions_section(args) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    import jax

    import facet

    if args.json and args.path is not None:
        return None  # machine-readable output: the dataset JSON only
    lines = [f"facet     {facet.__version__}"]
    for pkg in ("jax", "jaxlib", "e3nn-jax", "flax", "optax", "numpy", "ase", "vesin", "h5py"):
        try:
            lines.append(f"{pkg:<9} {version(pkg)}")
        except PackageNotFoundError:
            lines.append(f"{pkg:<9} (not installed)")
    devices = jax.devices()
    lines.append(
        f"devices   {len(devices)} x {devices[0].platform}: " + ", ".join(map(str, devices))
    )
    lines.append(device_line())
    return lines


def device_line() -> str:
    """Which device JAX will run Facet on, with a hint when an NVIDIA GPU is present but JAX
    has no CUDA back end (the ``cuda12`` extra is missing)."""
    import shutil

    import jax

    dev = jax.devices()[0]
    line = f"JAX will use {dev.platform.upper()} ({dev.device_kind}, {dev})"
    if dev.platform == "cpu":
        if shutil.which("nvidia-smi"):
            line += ('; an NVIDIA driver is present but this JAX has no CUDA back end: '
                     'pip install -e ".[cuda12]"')
        else:
            line += "; no GPU back end (for NVIDIA GPUs: pip install -e \".[cuda12]\")"
    return line


def _fmt_range(r, unit: str) -> str:
    if not r:
        return "-"
    return f"{r['min']:.4g} .. {r['max']:.4g} (mean {r['mean']:.4g}) {unit}"


def format_stats(st: dict) -> list[str]:
    """Human-readable lines for a :meth:`facet.data.stats.DatasetStats.as_dict`."""
    lines = [
        f"frames    {st['frames']}  materials {st['materials']}  atoms {st['atoms']}",
        f"labelled  {st['labelled_frames']}",
        f"atoms/frame     {_fmt_range(st['atoms_per_frame'], '')}",
        f"energy/atom     {_fmt_range(st['energy_per_atom_eV'], 'eV')}",
        f"force comp.     {_fmt_range(st['force_component_eV_per_A'], 'eV/A')}",
        f"|force|         {_fmt_range(st['force_norm_eV_per_A'], 'eV/A')}",
        f"stress comp.    {_fmt_range(st['stress_component_eV_per_A3'], 'eV/A^3 (ASE sign)')}",
    ]
    if "avg_neighbors" in st:
        lines.append(f"edges {st['edges']}  avg neighbours {st['avg_neighbors']:.3f}")
    els = st["elements"]
    lines.append(f"elements  {st['n_elements']}: " + " ".join(f"{k}:{v}" for k, v in els.items()))
    return lines


def dataset_section(args) -> list[str] | None:
    from pathlib import Path

    if args.path is None:
        return None
    path = Path(args.path)
    if path.is_dir():
        from facet.data.dataset import load_manifest

        m = load_manifest(path)
        if args.json:
            return [json.dumps({s: m["splits"][s]["stats"] for s in m["splits"]}, indent=1)]
        c = m["counts"]
        lines = [
            f"preprocessed {path} (format v{m['format_version']}, facet {m['facet_version']})",
            f"source    {m['source']['path']} ({m['source']['format']}, sha256 "
            f"{(m['source']['sha256'] or '-')[:12]})",
            f"label     {m['label']}   cutoff {m['cutoff']} A",
            f"read {c['read']}  kept {c['kept']}  skipped {c['skipped']} "
            f"{c['skipped_by_reason'] or ''}",
        ]
        for split, entry in m["splits"].items():
            lines.append(f"--- {split}: {len(entry['shards'])} shard(s)")
            lines += ["  " + ln for ln in format_stats(entry["stats"])]
        return lines
    from facet.data.frames import ReadStats
    from facet.data.sources import read_frames
    from facet.data.stats import DatasetStats

    stats, reads = DatasetStats(), ReadStats()
    for frame in read_frames(path, label=args.label, on_error="skip", stats=reads):
        stats.add(frame)
    st = stats.as_dict()
    if args.json:
        return [json.dumps({"stats": st, "counts": reads.as_dict()}, indent=1)]
    r = reads.as_dict()
    head = [f"dataset {path}: read {r['read']}  kept {r['kept']}  skipped {r['skipped']} "
            f"{r['skipped_by_reason'] or ''}"]  # fmt: skip
    return head + format_stats(st)


def presets_section(args) -> list[str] | None:
    """Parameter counts of the model presets (shapes only: no weights are materialised)."""
    if not args.presets:
        return None
    from facet.nn.presets import describe_presets

    return describe_presets().splitlines()


def model_section(args) -> list[str] | None:
    """A model's cutoff, dtype and supported elements (those it refuses are all the others)."""
    if not getattr(args, "model", None):
        return None
    import numpy as np

    from facet.elements import symbols_of
    from facet.model_io import load_model

    model = load_model(args.model)
    lines = [f"model {args.model}: cutoff {float(model.cutoff):g} A, "
             f"{np.dtype(model.dtype).name}"]  # fmt: skip
    supported = getattr(model, "supported_numbers", None)
    if supported is None:
        lines.append("supported elements: not declared (every element is accepted)")
    else:
        lines.append(f"supported elements ({len(supported)}): {' '.join(symbols_of(supported))}")
    return lines


#: (title, function) in print order: one literal table; :func:`register_section` adds to it
#: at run time.
SECTIONS: list[tuple[str, Section]] = [
    ("versions", versions_section),
    ("model", model_section),
    ("presets", presets_section),
    ("dataset", dataset_section),
]


def run(args: argparse.Namespace) -> int:
    import sys

    from facet.data.dataset import DatasetError

    for title, fn in SECTIONS:
        try:
            lines = fn(args)
        except (DatasetError, FileNotFoundError, ValueError) as e:
            print(f"facet info: {title}: error: {e}", file=sys.stderr)
            return 1
        if lines:
            if not args.json:
                print(f"== {title}")
            print("\n".join(lines))
    return 0
