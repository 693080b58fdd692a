"""Provides the full build, one module per job (see recommendations/README.md for the map).

``lease`` (the build lock), ``config`` (which algorithm), ``load`` (interactions and content ->
matrices), ``state`` (artifacts and a build's loaded model), ``rows`` (neighbour, popular and
pick rows, explanations), ``progress`` (a build's timings and its writers' lock), ``parts`` (the
neighbour lists and the star predictor, fitted beside the user chunks), ``tuning`` (whether a
build reuses the last tuned configuration or tunes again) and ``pipeline`` (start,
prepare, score chunks, finalize, fail, prune, activate). None of them queues a task: that is
``recommendations.tasks``.
"""
