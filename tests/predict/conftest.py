"""Prediction tests train and apply tiny models: one torch thread each (``one_torch_thread``, tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):  # noqa: ANN001 - the shared fixture
    yield
