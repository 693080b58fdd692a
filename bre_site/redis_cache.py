"""Provides Django's Redis cache backend with one redis-py client per connection pool, not one per call.

Django's ``RedisCacheClient.get_client()`` wraps the pool in a new ``redis.Redis`` on every cache
operation, and redis-py's constructor fills its table of response callbacks each time: a sixth of
the CPU of a cached page (docs/decisions.md, "Where a request's CPU went under load"). A client
takes a connection from its pool per command, so one client per pool serves every thread, and a
forked process (whose pool resets itself) as well.
"""
from __future__ import annotations

from django.core.cache.backends import redis as django_redis

# The fast path reads two private methods of Django's client; a Django without them gets its stock
# client per call (docs/decisions.md, "Builds yield the CPU: autogroups").
KEEPS_CLIENTS = all(hasattr(django_redis.RedisCacheClient, name)
                    for name in ("_get_connection_pool_index", "_get_connection_pool"))


class RedisCacheClient(django_redis.RedisCacheClient):
    """Django's client, keeping the ``redis.Redis`` of each connection pool."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        if not KEEPS_CLIENTS:
            return super().get_client(key, write=write)
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(django_redis.RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` with the client above."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
