"""CLI wiring: commands registered on a parser, backend choice, flag errors as clear messages."""
from __future__ import annotations

import argparse

import pytest

from smlocal.errors import CustomerError
from smlocal.runtime.commands import add_commands, choose_backend
from smlocal.runtime.process import ProcessBackend


def _parser():
    parser = argparse.ArgumentParser(prog="smlocal")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_commands_are_registered():
    parser = _parser()
    for argv in (["train", "--algorithm", "kmeans", "--channel", "train=x"], ["describe", "job"],
                 ["serve", "--model", "m.tar.gz"], ["predict", "-", "--content-type", "text/csv"],
                 ["transform", "--model", "m", "--input", "i", "--output", "o"], ["quickstart"]):
        args = parser.parse_args(argv)
        assert callable(args.handler)


def test_backend_choice_without_an_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert isinstance(choose_backend(None, None), ProcessBackend)
    assert isinstance(choose_backend("process", "smlocal:test"), ProcessBackend)
    assert isinstance(choose_backend(None, "smlocal:test", algorithm="kmeans"), ProcessBackend)
    with pytest.raises(CustomerError, match="needs Docker"):
        choose_backend(None, "someone/else:1")
    with pytest.raises(Exception, match="No Docker engine answers"):
        choose_backend("docker", "smlocal:test")


def test_serving_falls_back_to_processes_without_an_algorithm(monkeypatch):
    # smlocal's own server serves any built-in's model, so an image to serve with needs no --algorithm
    import io

    from smlocal.runtime.progress import Display

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    out = io.StringIO()
    display = Display(live=False, stream=out)
    assert isinstance(choose_backend(None, "someone/else:1", display=display, serving=True), ProcessBackend)
    assert isinstance(choose_backend(None, "smlocal:test", algorithm="kmeans", display=display), ProcessBackend)
    assert out.getvalue().splitlines() == [
        "smlocal: no Docker engine answers: running model as local processes",
        "smlocal: no Docker engine answers: running kmeans as local processes",
    ]
    with pytest.raises(CustomerError, match=r"--algorithm kmeans\|linear-learner to run"):
        choose_backend(None, "someone/else:1", display=display)


@pytest.fixture
def cli_main():
    """cli.main in-process; its handler (bound to the captured stderr) is removed afterwards."""
    import logging

    from smlocal.cli import main

    yield main
    logging.getLogger("smlocal").handlers.clear()


def test_errors_become_messages_and_exit_codes(tmp_path, capsys, cli_main):
    main = cli_main

    assert main(["train", "--algorithm", "kmeans", "--channel", f"train={tmp_path / 'missing'}",
                 "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Customer Error:" in err and "S3Uri" in err and "missing" in err and "Traceback" not in err
    assert main(["describe", str(tmp_path / "nojob")]) == 2 and "No training job found" in capsys.readouterr().err
