"""Benchmark runner: CHGNet (pretrained 0.3.0 weights ship in the chgnet wheel)."""

from __future__ import annotations

from _protocol import serve


def make(variant: str, options: dict):
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(model=CHGNet.load(verbose=False), use_device="cpu")


def versions() -> dict:
    import chgnet
    import torch

    return {
        "chgnet": chgnet.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def count(calc) -> int:
    return int(sum(p.numel() for p in calc.model.parameters()))


if __name__ == "__main__":
    serve(make, versions, count_parameters=count)
