import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny networks gain nothing from intra-op threads, and on a busy machine two threads wait on each
    other at every op; one thread keeps these tests fast. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
