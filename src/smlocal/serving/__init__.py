"""The inference side: ``container/serve`` (gunicorn + flask) answering like the built-ins' endpoints.

``app.invocations`` is the pure request -> response function; ``app.create_app`` wraps it in flask, with
``hot_routes`` answering the built-ins' /ping and /invocations without flask's per-request machinery;
``server.main`` loads the model and runs gunicorn. One codec module per content type in ``codecs/``
(``codecs.numbers``: the fast paths for CSV numbers and JSON rows).
"""
