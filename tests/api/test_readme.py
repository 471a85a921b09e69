"""README's "SageMaker's own API, locally": its Python snippet runs as written against ``smlocal api``
(with the export lines set), and its operations table is what the server answers."""
from __future__ import annotations

import contextlib
import io
import re

import pytest

from tests.helpers import REPO

SECTION = "## SageMaker's own API, locally"


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def _block(language: str) -> str:
    (code,) = re.findall(rf"```{language}\n(.*?)```", _section(), flags=re.S)
    return code


def test_the_readme_snippet_goes_from_zero_to_an_answer(api_server, monkeypatch, fast_sdk_clock, sm):
    from smlocal.api.session import environment

    exports = dict(re.findall(r"(AWS_[A-Z_]+)=(\S+)", _block("bash")))
    assert exports == {**environment("http://127.0.0.1:4566"), "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    for name, value in environment(api_server.url).items():  # the same lines, this server's port
        monkeypatch.setenv(name, value)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(_block("python"), "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    out = printed.getvalue()
    assert "Completed - Training job completed" in out and "#quality_metric: host=algo-1" in out
    clusters = re.search(r"closest clusters: \[(.*)\]", out).group(1).split(", ")
    assert len(clusters) == 5 and all(0 <= float(c) < 10 for c in clusters)
    assert not [e for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith("kmeans-")]


def _table_operations(api: str, supported: bool) -> set[str]:
    rows = [r for r in _section().splitlines() if r.startswith("| ")]
    found, current = set(), None
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        current = cells[0] or current
        if (current == api or current.startswith(api + ":")) and cells[2].startswith("supported") == supported:
            operations = re.sub(r"\([^)]*\)", "", cells[1])  # not the parameters named in brackets
            found |= set(re.findall(r"`([A-Z][A-Za-z]+)`", operations))
    return found


@pytest.mark.parametrize("api, service", [("SageMaker Runtime", "sagemaker-runtime"), ("SageMaker", "sagemaker"),
                                          ("CloudWatch Logs", "logs")])
def test_the_operations_table_is_what_the_server_answers(api_server, api, service):
    from smlocal.api.protocol import service_model

    handlers = {"sagemaker": api_server.services.sagemaker_handlers(), "logs": api_server.services.logs_handlers(),
                "sagemaker-runtime": {"InvokeEndpoint": api_server.services.invoke}}[service]
    assert _table_operations(api, True) == set(handlers)
    not_supported = _table_operations(api, False)
    assert not_supported <= set(service_model(service).operation_names) - set(handlers)
    assert not_supported or service == "logs"  # the Logs rows name no operation it lacks
