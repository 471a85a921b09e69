"""``smlocal api``: serve SageMaker's API on a loopback port until Ctrl-C (or SIGTERM)."""
from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

DEFAULT_PORT = 4566
DEFAULT_STATE_DIR = Path("~/.smlocal/api")


def export_lines(url: str, region: str, s3_endpoint_url: str | None = None) -> list[str]:
    from smlocal.api.session import environment

    return [f"export {key}={value}" for key, value in environment(url, region, s3_endpoint_url).items()]


def run(args) -> int:
    import logging

    from smlocal.api.server import ApiServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request

    server = ApiServer(Path(args.state_dir).expanduser(), port=args.port, region=args.region,
                       backend=args.backend, s3_endpoint_url=args.s3_endpoint_url,
                       max_training_instances=args.max_training_instances, image=args.image).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"smlocal api: SageMaker, SageMaker Runtime, CloudWatch Logs and S3/STS at {server.url} "
          f"(state in {server.store.root})", flush=True)
    print("point boto3, the AWS CLI and the sagemaker SDK at it with:", flush=True)
    for line in export_lines(server.url, args.region, args.s3_endpoint_url):
        print(line, flush=True)
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    print("smlocal api: stopping (endpoints are stopped; they start again with the server)", flush=True)
    server.stop()
    return 0


def add_commands(subparsers) -> None:
    from smlocal.api.context import MAX_TRAINING_INSTANCES

    p = subparsers.add_parser("api", help="serve SageMaker's API locally (boto3, AWS CLI, sagemaker SDK)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; "
                                                                 "0 = any free)")
    p.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR),
                   help=f"where jobs, models, endpoints and S3 objects are kept (default {DEFAULT_STATE_DIR})")
    p.add_argument("--region", default="us-east-1", help="the region ARNs name (default us-east-1)")
    p.add_argument("--backend", choices=("process", "docker"),
                   help="where containers run (default: smlocal's own as processes; other images on docker)")
    p.add_argument("--image", help="smlocal's image (e.g. smlocal:latest): with the docker backend it runs the AWS "
                                   "built-ins, the scikit-learn framework image and the endpoints of their models")
    p.add_argument("--s3-endpoint-url", metavar="URL",
                   help="jobs read and write S3 here (MinIO, real S3) instead of the embedded S3")
    p.add_argument("--max-training-instances", type=int, default=MAX_TRAINING_INSTANCES, metavar="N",
                   help="instances of one type that running training jobs may use at once; more is "
                        f"ResourceLimitExceeded, as the account's quota on AWS (default {MAX_TRAINING_INSTANCES})")
    p.set_defaults(handler=run)
