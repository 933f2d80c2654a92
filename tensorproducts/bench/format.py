"""Markdown helpers shared by the tensor-product benchmark report, its checks and its plots."""

from __future__ import annotations

import math

__all__ = ["cell", "find_row", "fmt", "md_table", "variants_of"]


def fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def md_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def variants_of(rows):
    seen = []
    for r in rows:
        if r["variant"] not in seen:
            seen.append(r["variant"])
    return seen


def find_row(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def cell(r):
    if r is None:
        return ""
    if "skipped" in r:
        return "skip"
    return f"{fmt(r['median_ms'])} ±{fmt(r['iqr_ms'], 2)}"
