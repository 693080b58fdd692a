"""gunicorn settings of the site, read from the project root: ``gunicorn bre_site.wsgi:application --workers 2``.

One hook: once a worker has loaded the site, ``gc.freeze()`` moves everything it loaded (Django,
DRF, the URL patterns, the models: about 150,000 objects) out of the cyclic collector's sight.
Without it, each worker's full collection walks all of them: measured under the serving
benchmark's load, one full collection per worker every 30 s or so, each pausing that worker for
70-80 ms while 16 requests wait behind it; with it, a few short ones (about 10 ms). The objects
frozen stay alive, as they would anyway (they live as long as the worker).

The command line still sets the rest (bind address, workers); ``--config`` names another file.
"""
import gc


def post_worker_init(worker):
    """Freeze the objects the worker loaded at start-up (see the module's docstring)."""
    gc.collect()
    gc.freeze()
