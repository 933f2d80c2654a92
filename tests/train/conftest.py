"""Fixtures for the training tests: a toy pair potential (the model contract) and labelled data."""

from __future__ import annotations

import pytest
from toy_training import make_teacher, toy_factory
from toymodel import labelled_graphs, toy_predict


@pytest.fixture(scope="session")
def toy_data():
    """(train, val) graphs labelled by a teacher pair potential with known E0s."""
    teacher = make_teacher()
    graphs = labelled_graphs(48, teacher, seed=7)
    return graphs[:40], graphs[40:]


@pytest.fixture
def run_kwargs(toy_data):
    return {"model_factory": toy_factory, "predict_fn": toy_predict, "data": toy_data,
            "report": lambda m: None}
