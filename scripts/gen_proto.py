"""Generate src/smlocal/data/record_pb2.py from proto/record.proto with grpcio-tools' bundled protoc.

Run: python scripts/gen_proto.py [--out DIR]   (grpcio-tools pinned in constraints.txt)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(out_dir: Path) -> Path:
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    code = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out_dir}", "record.proto"])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    return out_dir / "record_pb2.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "smlocal" / "data")
    args = parser.parse_args(argv)
    print(generate(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
