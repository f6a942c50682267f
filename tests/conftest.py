import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """Run torch on one thread during tests.

    The test models are tiny: thread start-up and synchronisation cost more than they save, and on
    a loaded 2-core CI machine torch's default thread pool slows these tests down many times over.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
