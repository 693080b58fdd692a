"""gunicorn settings of the site, read from the project root: ``gunicorn bre_site.wsgi:application --workers 2``.

One hook. Once a worker has loaded the site, it loads what Django would otherwise load on the
first requests (the URL patterns, every view module, the reverse lookup tables), then
``gc.freeze()`` moves all of it (about 170,000 objects) out of the cyclic collector's sight.
The objects frozen stay alive, as they would anyway: they live as long as the worker.

Why: without it, a worker's full collections walk all those objects. Measured under the serving
benchmark's load (``benchmarks/serving.py``, 2 workers, 32 connections, 30 s): one full
collection per worker in the run, pausing it for 70-80 ms while the 16 requests queued on it
wait. Freezing without loading the URLs first left three or four of 10-13 ms each (what the
first requests loaded); with them loaded, none.

Workers: ``WEB_CONCURRENCY``, else gunicorn's advice of (2 × cores) + 1, each with
``GUNICORN_THREADS`` threads (default 4, the ``gthread`` worker). A sync worker idles while it
waits for the database or Redis, and one worker per core left cores idle under load; threads
also keep clients' connections alive instead of a new TCP connection per request.

The command line still sets the rest (bind address) and overrides these; ``--config`` names another file.
"""
import gc
import os

workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)


def post_worker_init(worker):
    """Load what the first requests would, then freeze the worker's objects (see the module's docstring)."""
    from django.conf import settings

    if settings.configured:
        from django.urls import get_resolver

        resolver = get_resolver()
        resolver.url_patterns  # imports the URLconf and the view modules
        resolver.reverse_dict  # builds the reverse lookup tables
    gc.collect()
    gc.freeze()


def worker_exit(server, worker):
    """Write the impressions still waiting in this worker's buffer before it exits: every served list is counted."""
    from django.conf import settings

    if settings.configured:
        from recommendations.impressions.recording import impressions_flush

        impressions_flush()
