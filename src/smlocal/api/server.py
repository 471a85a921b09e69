"""``ApiServer``: the SageMaker, Runtime, Logs and S3/STS faces on one loopback port, started and stopped.

    server = ApiServer(state_dir, port=0).start()   # port 0: any free port
    ... boto3 clients with endpoint_url=server.url ...
    server.stop()                                     # stops jobs' endpoints, flushes the S3 mirror

S3 and STS are moto's own server backends, in-process; jobs reach S3 through this same URL (or
``s3_endpoint_url``: MinIO, real S3, where clients must send their S3 requests too), with the
runtime's S3 layer.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from smlocal.api.context import MAX_TRAINING_INSTANCES, Context
from smlocal.api.store import Store
from smlocal.api.session import CREDENTIALS, REGION

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


def _jobs_s3_client(url: str, region: str):
    """The S3 client jobs use against the embedded S3: explicit local credentials, whatever the env."""
    import boto3
    from botocore.config import Config

    from smlocal.runtime.s3.client import LazyClient

    config = Config(max_pool_connections=32, user_agent_extra="smlocal", retries={"mode": "standard",
                                                                                   "max_attempts": 5})
    client = boto3.session.Session(region_name=region, **CREDENTIALS).client("s3", endpoint_url=url, config=config)
    return LazyClient(url, client=client)


class ApiServer:
    def __init__(self, state_dir: str | Path, port: int = 4566, region: str = REGION,
                 backend: str | None = None, s3_endpoint_url: str | None = None,
                 max_training_instances: int = MAX_TRAINING_INSTANCES, image: str | None = None):
        self.store = Store(state_dir)
        self.port, self.region, self.backend, self.image = port, region, backend, image
        self.max_training_instances = max_training_instances
        self.s3_endpoint_url = s3_endpoint_url
        self._server = None
        self._thread: threading.Thread | None = None
        self.mirror = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _fallback(self):
        """moto's server app, marking the S3 mirror dirty after any request that may change S3."""
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        moto = DomainDispatcherApplication(create_backend_app)
        if self.s3_endpoint_url:
            return _elsewhere(moto, self.s3_endpoint_url)

        def app(environ, start_response):
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") and self.mirror is not None:
                try:
                    return moto(environ, start_response)
                finally:
                    self.mirror.dirty.set()
            return moto(environ, start_response)
        return app

    def start(self) -> "ApiServer":
        from werkzeug.serving import make_server
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        from smlocal.api import s3state
        from smlocal.api.app import ApiApp
        from smlocal.api.services import Services

        s3state.reset_moto()
        if not self.s3_endpoint_url:
            self.mirror = s3state.S3Mirror(self.store.root / "s3")
            self.mirror.load()
        self._server = make_server(HOST, self.port, None, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_port
        s3 = _external_s3(self.s3_endpoint_url) if self.s3_endpoint_url else _jobs_s3_client(self.url, self.region)
        ctx = Context(self.store, self.region, s3, self.backend, self.max_training_instances, self.image)
        self.services = Services(ctx)
        self._server.app = ApiApp(self.services.sagemaker_handlers(), self.services.logs_handlers(),
                                  self.services.invoke, self._fallback())
        self._thread = threading.Thread(target=self._server.serve_forever, name="smlocal-api", daemon=True)
        self._thread.start()
        if self.mirror is not None:
            self.mirror.start()
        self.services.resume()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.services.shutdown()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
        if self.mirror is not None:
            self.mirror.stop()
        self._server = None

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _elsewhere(moto, s3_url: str):
    """moto for STS and the rest, but S3 requests answered with where S3 is: objects put here would
    never reach the jobs, which read and write at ``s3_url``."""
    from werkzeug.wrappers import Request, Response

    from smlocal.api.app import signed_service

    def app(environ, start_response):
        if signed_service(Request(environ)) != "s3":
            return moto(environ, start_response)
        message = (f"This smlocal api serves S3 at {s3_url} (--s3-endpoint-url): point S3 clients there, "
                   f"e.g. export AWS_ENDPOINT_URL_S3={s3_url}")
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidRequest</Code>"
                f"<Message>{message}</Message></Error>")
        return Response(body, status=400, content_type="application/xml")(environ, start_response)
    return app


def _external_s3(url: str):
    from smlocal.runtime.s3.client import LazyClient

    return LazyClient(url)
