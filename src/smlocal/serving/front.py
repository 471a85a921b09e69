"""nginx in front of gunicorn, as SageMaker's own serving examples run it: the config and the process.

nginx reads every request in full (headers and body) before gunicorn sees it, so a client that sends
half a request holds an nginx connection, never a model worker. gunicorn listens on a unix socket in a
run directory of its own, so several endpoints on one machine never share a path.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Mapping, Optional

from smlocal.serving.config import ServingConfig

log = logging.getLogger("smlocal")
NGINX_VAR = "SMLOCAL_NGINX"  # "0": gunicorn alone on the port, even where nginx is installed
SOCKET_NAME = "gunicorn.sock"
# Bodies up to this size reach the app, which answers over-limit ones with its own 413 text.
MAX_BODY_BYTES = 128 * 1024 * 1024
CLIENT_TIMEOUT_S = 60  # nginx's default wait between two reads of a client's headers or body


def nginx_wanted(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The nginx executable to put in front, or None (not installed, or SMLOCAL_NGINX=0)."""
    env = os.environ if environ is None else environ
    if env.get(NGINX_VAR, "").strip() == "0":
        return None
    return shutil.which("nginx", path=env.get("PATH"))


def socket_path(run_dir: Path) -> Path:
    return Path(run_dir) / SOCKET_NAME


def nginx_conf(config: ServingConfig, run_dir: Path) -> str:
    """nginx.conf for one endpoint; everything it writes is under ``run_dir`` (a non-root user can run it)."""
    run = Path(run_dir)
    temp = "\n".join(f"    {kind}_temp_path {run}/{kind}_temp;" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes 1;
daemon off;
pid {run / 'nginx.pid'};
error_log stderr warn;
events {{
    worker_connections 2048;
}}
http {{
    access_log off;
{temp}
    upstream gunicorn {{
        server unix:{socket_path(run)};
    }}
    server {{
        listen {config.host}:{config.port} deferred;
        client_max_body_size {MAX_BODY_BYTES};
        client_header_timeout {CLIENT_TIMEOUT_S}s;
        client_body_timeout {CLIENT_TIMEOUT_S}s;
        keepalive_timeout 5;
        location / {{
            proxy_request_buffering on;
            proxy_set_header Host $http_host;
            proxy_redirect off;
            proxy_read_timeout {config.timeout}s;
            proxy_pass http://gunicorn;
        }}
    }}
}}
"""


class Front:
    """nginx as a child of the gunicorn master; when nginx ends, the master is asked to stop too."""

    def __init__(self, nginx: str, config: ServingConfig, run_dir: Path):
        self.nginx = nginx
        self.conf = Path(run_dir) / "nginx.conf"
        self.conf.write_text(nginx_conf(config, run_dir))
        self.proc: Optional[subprocess.Popen] = None
        self.stopping = False
        self.failed_code: Optional[int] = None

    def start(self, _arbiter=None) -> None:
        """gunicorn's when_ready hook: the unix socket is bound, so nginx can forward to it."""
        self.proc = subprocess.Popen([self.nginx, "-c", str(self.conf)])
        log.info("nginx (pid %d) listens in front of gunicorn", self.proc.pid)
        threading.Thread(target=self._watch, daemon=True, name="nginx-watch").start()

    def _watch(self) -> None:
        # The master reaps children with waitpid(-1) too; when it reaps nginx first, Popen reports 0.
        code = self.proc.wait()
        if self.stopping:
            return
        if code in (0, -signal.SIGTERM, -signal.SIGQUIT):  # stopped, e.g. by `docker stop`
            log.info("nginx stopped; stopping the server")
        else:
            self.failed_code = code
            log.error("nginx exited with code %s; stopping the server", code)
        os.kill(os.getpid(), signal.SIGTERM)

    def drain(self, timeout: float) -> None:
        """Before gunicorn stops: nginx stops listening and finishes the requests it holds (SIGQUIT)."""
        self._end(signal.SIGQUIT, timeout)

    def stop(self, _arbiter=None) -> None:
        """gunicorn's on_exit hook: make sure nginx is gone."""
        self._end(signal.SIGTERM, 5)

    def _end(self, sig: int, timeout: float) -> None:
        self.stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
