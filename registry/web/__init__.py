"""The registry over HTTP: a REST API under ``/api/v1`` (:mod:`registry.web.api`) and server-rendered
pages (:mod:`registry.web.pages`), served by one FastAPI app (:func:`registry.web.app.create_app`),
every handler a thin call of the Python API (:mod:`registry.api`)."""
