import pytest

from support import servers


@pytest.fixture(scope="module")
def pair():
    """nova-cache-server and the reference redis-server, both without persistence, for one test module."""
    nova = servers.start_nova("--save", "", "--appendonly", "no")
    ref = servers.start_redis()
    yield nova, ref
    nova.cleanup()
    ref.cleanup()
