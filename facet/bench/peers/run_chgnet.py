"""Benchmark runner: CHGNet (pretrained 0.3.0 weights ship in the chgnet wheel)."""

from __future__ import annotations

from _protocol import serve, torch_parameters, torch_versions


def make(variant: str, options: dict):
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(model=CHGNet.load(verbose=False), use_device="cpu")


def versions() -> dict:
    return torch_versions("chgnet")


def count(calc) -> int:
    return torch_parameters(calc.model)


if __name__ == "__main__":
    serve(make, versions, count_parameters=count)
