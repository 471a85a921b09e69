"""The inference side: ``container/serve`` (gunicorn + flask) answering like the built-ins' endpoints.

``app.invocations`` is the pure request -> response function; ``app.create_app`` wraps it in flask;
``server.main`` loads the model and runs gunicorn. One codec module per content type in ``codecs/``.
"""
