"""Trainer tests run tiny models: one torch thread each, since thread hand-offs cost more than
the arithmetic (about 10x slower with two threads on a 2-core machine)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
