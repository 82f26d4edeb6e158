import os
import sys

import pytest
import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import servers  # noqa: E402


@pytest.fixture(scope="session")
def nova_server():
    server = servers.start_nova()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_server():
    server = servers.start_redis()
    yield server
    server.cleanup()


@pytest.fixture
def r(nova_server):
    """A redis-py client on the shared server, every database flushed first."""
    client = redis.Redis(host="127.0.0.1", port=nova_server.port)
    client.flushall()
    client.config_set("maxmemory", 0)
    yield client
    client.close()


@pytest.fixture
def port(nova_server):
    return nova_server.port
