#!/usr/bin/env python3
"""A minimal SageMaker-contract "image" (standard library only) to test the runtime on its own.

``stub.py train``: reads /opt/ml/input/config/*.json (under SAGEMAKER_BASE_DIR), reads every channel
(File: the directory's files; Pipe: the FIFOs <channel>_<epoch> for ``epochs`` epochs) and writes a
JSON report of what it saw to model/model_<host> and output/data/report-<host>.json.
Behaviour switches (hyperparameters): ``fail`` (write output/failure, exit 2), ``exit_code`` (exit
without a failure file), ``sleep`` (seconds, after reading), ``ignore_sigterm``, ``epochs``,
``close_after`` (bytes: close the pipe early), ``fail_if_empty`` (a channel that brought no bytes: write
output/failure "holds no records" and exit 2, as the built-ins do), ``save_on_sigterm`` (on SIGTERM write
model/model_<host> "saved on stop" and exit 143).

``stub.py serve``: an HTTP server on SAGEMAKER_BIND_TO_PORT with /ping, /invocations (answers
``{"n": <lines in body>, "bytes": <len>, "model": [files], "ct": ..., "accept": ...}`` + newline) and
/execution-parameters (from STUB_EXECUTION_PARAMETERS, 404 when unset). STUB_SERVE_FAIL makes it exit 3.
"""
import hashlib
import http.server
import json
import os
import signal
import sys
import time
from pathlib import Path

BASE = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))


def read_json(name):
    return json.loads((BASE / "input" / "config" / name).read_text())


def read_file_channel(name):
    root = BASE / "input" / "data" / name
    files, digest, size = [], hashlib.sha256(), 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        files.append(path.relative_to(root).as_posix())
        digest.update(data)
        size += len(data)
    return {"mode": "File", "files": files, "sha256": digest.hexdigest(), "bytes": size}


def read_pipe_channel(name, epochs, close_after):
    seen = []
    for epoch in range(epochs):
        fifo = BASE / "input" / "data" / f"{name}_{epoch}"
        deadline = time.time() + 30
        while not fifo.exists():
            if time.time() > deadline:
                raise SystemExit(f"pipe {fifo} never appeared")
            time.sleep(0.02)
        digest, size = hashlib.sha256(), 0
        with open(fifo, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
                if close_after and size >= close_after:
                    break
        seen.append({"sha256": digest.hexdigest(), "bytes": size, "is_fifo": True})
    return {"mode": "Pipe", "epochs": seen}


def train():
    hps = read_json("hyperparameters.json")
    channels = read_json("inputdataconfig.json")
    resources = read_json("resourceconfig.json")
    host = resources["current_host"]
    if hps.get("save_on_sigterm") == "true":
        def save_and_exit(signum, frame):
            (BASE / "model" / f"model_{host}").write_text("saved on stop")
            os._exit(143)
        signal.signal(signal.SIGTERM, save_and_exit)
    if hps.get("ignore_sigterm") == "true":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"stub training on {host}", flush=True)
    if "fail" in hps:
        (BASE / "output").mkdir(parents=True, exist_ok=True)
        (BASE / "output" / "failure").write_text(f"Customer Error: {hps['fail']}")
        print(f"failing: {hps['fail']}", flush=True)
        return 2
    if "exit_code" in hps:
        return int(hps["exit_code"])
    report = {"host": host, "hyperparameters": hps, "inputdataconfig": channels, "resourceconfig": resources,
              "env": {k: v for k, v in os.environ.items() if k.startswith(("TRAINING_", "SMLOCAL_", "DMLC_", "STUB_"))},
              "channels": {}}
    for name, cfg in channels.items():
        if cfg.get("TrainingInputMode") == "Pipe":
            report["channels"][name] = read_pipe_channel(name, int(hps.get("epochs", "1")),
                                                         int(hps.get("close_after", "0")))
        else:
            report["channels"][name] = read_file_channel(name)
        seen = report["channels"][name]
        if "fail_if_empty" in hps and sum(e["bytes"] for e in seen.get("epochs", [seen])) == 0:
            (BASE / "output" / "failure").write_text(f"Customer Error: channel '{name}' holds no records.")
            return 2
    if "sleep" in hps:
        print("sleeping", flush=True)
        time.sleep(float(hps["sleep"]))
    text = json.dumps(report, indent=1)
    (BASE / "model" / f"model_{host}").write_text(text)
    (BASE / "output" / "data").mkdir(parents=True, exist_ok=True)
    (BASE / "output" / "data" / f"report-{host}.json").write_text(text)
    print("stub training done", flush=True)
    return 0


CUSTOM = "X-Amzn-SageMaker-Custom-Attributes"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        print("stub-serve " + fmt % args, flush=True)

    def _send(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if self.headers.get(CUSTOM):  # echoed, as a container may answer CustomAttributes
            self.send_header(CUSTOM, self.headers[CUSTOM])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self._send(200)
        elif self.path == "/execution-parameters" and os.environ.get("STUB_EXECUTION_PARAMETERS"):
            self._send(200, os.environ["STUB_EXECUTION_PARAMETERS"].encode())
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        limit = int(os.environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB", "6")) * 1024 * 1024
        if len(body) > limit:
            self._send(413, b"too large", "text/plain")
            return
        model = sorted(p.name for p in (BASE / "model").iterdir())
        answer = {"n": len(body.splitlines()), "bytes": len(body), "model": model,
                  "ct": self.headers.get("Content-Type"), "accept": self.headers.get("Accept"),
                  "custom": self.headers.get(CUSTOM),
                  "batch": os.environ.get("SAGEMAKER_BATCH")}
        self._send(200, (json.dumps(answer) + "\n").encode())


def serve():
    if os.environ.get("STUB_SERVE_FAIL"):
        print(f"stub cannot load the model: {os.environ['STUB_SERVE_FAIL']}", flush=True)
        return 3
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"stub serving on {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "train"
    sys.exit(train() if command == "train" else serve())
