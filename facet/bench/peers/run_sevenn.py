"""Benchmark runner: SevenNet-0 (weights ship in the sevenn wheel). Run with the SevenNet venv."""

from __future__ import annotations

from _protocol import serve


def make(variant: str, options: dict):
    from sevenn.calculator import SevenNetCalculator

    return SevenNetCalculator("7net-0", device="cpu")


def versions() -> dict:
    import sevenn
    import torch

    return {
        "sevenn": sevenn.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def count(calc) -> int:
    return int(sum(p.numel() for p in calc.model.parameters()))


if __name__ == "__main__":
    serve(make, versions, count_parameters=count)
