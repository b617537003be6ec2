"""Model tests run torch on one thread: the models are tiny, and on a shared 2-core machine a second OpenMP
thread makes them many times slower (threads spin-wait for a busy core)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
