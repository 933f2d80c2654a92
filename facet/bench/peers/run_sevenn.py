"""Benchmark runner: SevenNet-0 (weights ship in the sevenn wheel). Run with the SevenNet venv."""

from __future__ import annotations

from _protocol import serve, torch_parameters, torch_versions


def make(variant: str, options: dict):
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device="cpu")


def versions() -> dict:
    return torch_versions("sevenn")


def count(calc) -> int:
    return torch_parameters(calc.model)


if __name__ == "__main__":
    serve(make, versions, count_parameters=count)
