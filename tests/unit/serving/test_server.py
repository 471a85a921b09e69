"""gunicorn's settings for serve: every option is one the installed gunicorn knows, and none is shared."""
from __future__ import annotations

import pytest
from gunicorn.config import Config

from smlocal.errors import CustomerError

from smlocal.serving.config import ServingConfig
from smlocal.serving.server import gunicorn_options
from smlocal.serving.worker import SlowLaneWorker


def applied(options: dict) -> Config:
    cfg = Config()
    for key, value in options.items():
        cfg.set(key, value)  # raises on a setting this gunicorn does not have
    return cfg


def test_alone_a_slow_lane_of_threads_takes_slow_clients_so_none_holds_a_worker():
    cfg = applied(gunicorn_options(ServingConfig(workers=2, timeout=30), "127.0.0.1:9"))
    assert cfg.worker_class is SlowLaneWorker and cfg.threads >= 4 and cfg.workers == 2
    assert cfg.bind == ["127.0.0.1:9"] and cfg.keepalive == 0  # each request goes to a free worker


def test_behind_nginx_the_workers_are_sync():
    """nginx reads each request in full first: a worker never waits on a client, so one thread serves."""
    cfg = applied(gunicorn_options(ServingConfig(workers=2, threads=8), "unix:/tmp/x.sock", buffered_front=True))
    assert cfg.worker_class_str == "sync" and cfg.threads == 1 and cfg.workers == 2
    assert cfg.keepalive == 0 and cfg.post_worker_init.__name__ == "limit_client_waits"  # read timeouts stay


def test_no_control_socket_is_shared_between_endpoints():
    """gunicorn >= 25.1 opens $HOME/.gunicorn/gunicorn.ctl by default, one path for every endpoint."""
    cfg = applied(gunicorn_options(ServingConfig(), "unix:/tmp/x.sock"))
    if "control_socket_disable" in cfg.settings:
        assert cfg.control_socket_disable is True


def test_the_client_read_timeout_comes_from_the_environment_and_bad_values_are_named():
    assert ServingConfig.from_env({}).client_read_timeout == 20
    assert ServingConfig.from_env({"SMLOCAL_CLIENT_READ_TIMEOUT": "3"}).client_read_timeout == 3
    with pytest.raises(CustomerError, match="SMLOCAL_CLIENT_READ_TIMEOUT='0'"):
        ServingConfig.from_env({"SMLOCAL_CLIENT_READ_TIMEOUT": "0"})


def test_a_forked_worker_ending_never_returns_into_the_masters_code(tmp_path, monkeypatch):
    """gunicorn's workers are forked inside the master's run() and end with SystemExit, which unwinds through
    our stack: run_gunicorn must end the worker there, not return into main()'s cleanup (nginx, socket dir)."""
    import os

    from smlocal.serving import server

    def fork_and_exit(self):
        if os.fork() == 0:
            raise SystemExit(3)  # as a worker ends
        _, status = os.wait()
        raise SystemExit(os.waitstatus_to_exitcode(status) + 10)  # the master ends: 13 if the worker said 3

    monkeypatch.setattr(server._Gunicorn, "run", fork_and_exit)
    monkeypatch.setattr(server._Gunicorn, "__init__", lambda self, *a, **k: None)
    master = os.getpid()
    code = server.run_gunicorn(None, ServingConfig(), {"bind": ["127.0.0.1:9"], "worker_class": "sync", "threads": 1})
    if os.getpid() != master:  # the bug: the worker came back here; record it and end it
        (tmp_path / "worker-returned").write_text("")
        os._exit(0)
    assert code == 13 and not (tmp_path / "worker-returned").exists()
