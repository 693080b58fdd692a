"""Provides every piece of vendor-specific SQL of the app, each behind a small function with its portable path.

* ``bulk``: many rows into a table (PostgreSQL ``COPY``, else ``executemany``).
* ``blobs``: one large ``bytea`` value in and out (binary ``COPY``, else the ORM).
* ``locks``: the lock a build's chunk takes before it writes (advisory lock and ``FOR KEY SHARE``, else ``FOR UPDATE``).
* ``columns``: interactions read as columns; its fast paths are ``packed_postgresql`` (``string_agg`` of
  binary records) and ``packed_sqlite`` (``group_concat`` of text), its portable path the cursor.
* ``binary``: binary results from a psycopg 3 cursor.
* ``compiled``: a queryset compiled once and run with another value (Django ORM internals).
* ``payload_lookup``: the one-query read of a reader's stored response body.
"""
