"""Trainer tests run tiny models: one torch thread each (see ``one_torch_thread`` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):  # noqa: ANN001 - the shared fixture
    yield
