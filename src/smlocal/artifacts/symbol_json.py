"""The MXNet symbol graph of a linear-learner model, written in MXNet's own JSON style.

The built-in saves ``dot(data, fc0_weight) -> broadcast_add(., fc0_bias) -> <head>(., out_label)`` with
``sym.tojson()`` (its ``mx-mod-symbol.json``). We write the same graph as text, formatted the way dmlc's JSON writer
formats it (``", "`` + newline between members, single-entry objects on one line), so our file reads
like the built-in's and loads with ``mx.sym.load`` / ``mx.mod.Module.load``.
"""
from __future__ import annotations

import json

# MXNet 1.3.1, what the built-in's 2020-2024 artifacts record (the 2018 ones say 10000).
MXNET_VERSION = 10301

# predictor head op -> how its forward pass maps the linear output to the score
HEAD_OPS = {
    "LinearRegressionOutput": "identity",
    "MAERegressionOutput": "identity",
    "LogisticRegressionOutput": "sigmoid",
    "SVMOutput": "identity",
    "SoftmaxOutput": "softmax",
}


def _attrs_text(attrs: dict[str, str], indent: str) -> str:
    items = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in attrs.items()]
    if len(items) == 1:
        return "{" + items[0] + "}"
    inner = ", \n".join(f"{indent}  {item}" for item in items)
    return "{\n" + inner + f"\n{indent}}}"


def _node_text(op: str, name: str, inputs: list[int], attrs: dict[str, str] | None) -> str:
    pad = "      "
    lines = [f'{pad}"op": {json.dumps(op)}', f'{pad}"name": {json.dumps(name)}']
    if attrs:
        lines.append(f'{pad}"attrs": {_attrs_text(attrs, pad)}')
    lines.append(f'{pad}"inputs": [' + ", ".join(f"[{i}, 0, 0]" for i in inputs) + "]")
    return "    {\n" + ", \n".join(lines) + "\n    }"


def linear_symbol_json(feature_dim: int, num_outputs: int, head_op: str, counter: int = 0) -> str:
    """The symbol JSON of ``head(dot(data, fc0_weight) + fc0_bias)``.

    ``counter`` is MXNet's global name counter (``dot32``, ``broadcast_plus32``...); it only affects
    node names, which no loader depends on.
    """
    if head_op not in HEAD_OPS:
        raise ValueError(f"unknown head op {head_op!r}; expected one of {sorted(HEAD_OPS)}")
    nodes = [
        ("null", "data", [], None),
        ("null", "fc0_weight", [], {"__shape__": f"({feature_dim}, {num_outputs})"}),
        ("dot", f"dot{counter}", [0, 1], None),
        ("null", "fc0_bias", [], {"__lr_mult__": "10.0", "__shape__": f"(1, {num_outputs})"}),
        ("broadcast_add", f"broadcast_plus{counter}", [2, 3], None),
        ("null", "out_label", [], None),
        (head_op, f"{head_op.lower()}{counter}", [4, 5], None),
    ]
    body = ", \n".join(_node_text(*node) for node in nodes)
    return (
        "{\n"
        '  "nodes": [\n' + body + "\n  ], \n"
        '  "arg_nodes": [0, 1, 3, 5], \n'
        '  "node_row_ptr": [0, 1, 2, 3, 4, 5, 6, 7], \n'
        '  "heads": [[6, 0, 0]], \n'
        f'  "attrs": {{"mxnet_version": ["int", {MXNET_VERSION}]}}\n'
        "}"
    )


def head_op_of(symbol_text: str) -> str | None:
    """The op of the graph's output node (e.g. ``LogisticRegressionOutput``), or None if unreadable."""
    try:
        graph = json.loads(symbol_text)
        head_index = graph["heads"][0][0]
        return str(graph["nodes"][head_index]["op"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
