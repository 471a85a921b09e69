"""The nginx front's configuration: what it listens on, where it forwards, and that it buffers whole requests."""
from __future__ import annotations

import re
from pathlib import Path

from smlocal.serving.config import ServingConfig
from smlocal.serving.front import nginx_conf, nginx_wanted


def test_conf_listens_on_the_port_and_forwards_to_the_unix_socket(tmp_path: Path):
    conf = nginx_conf(ServingConfig(port=8123, host="0.0.0.0", timeout=45, max_payload_mb=6), tmp_path)
    assert re.search(r"listen 0\.0\.0\.0:8123\b", conf)
    assert f"server unix:{tmp_path / 'gunicorn.sock'};" in conf
    assert "daemon off;" in conf and f"pid {tmp_path / 'nginx.pid'};" in conf
    # every path nginx writes is under the run directory: a non-root container user can run it
    for directive in ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
                      "scgi_temp_path"):
        assert re.search(rf"{directive} {re.escape(str(tmp_path))}/", conf), directive
    assert "proxy_request_buffering on;" in conf  # a slow body is read by nginx, not by a gunicorn thread
    assert "proxy_read_timeout 45s;" in conf
    # bodies over the payload limit still reach the app, which answers its own 413 text
    size = int(re.search(r"client_max_body_size (\d+);", conf).group(1))
    assert size > 6 * 1024 * 1024


def test_nginx_wanted_only_when_installed_and_not_switched_off(tmp_path: Path):
    fake = tmp_path / "nginx"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert nginx_wanted({"PATH": str(tmp_path)}) == str(fake)
    assert nginx_wanted({"PATH": str(tmp_path), "SMLOCAL_NGINX": "0"}) is None
    assert nginx_wanted({"PATH": str(tmp_path / "none")}) is None
