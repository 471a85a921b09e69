"""Batch transform: every input file through a local endpoint, one ``<file>.out`` per input, in order.

SplitType (None | Line | RecordIO) cuts a file into records; BatchStrategy (SingleRecord | MultiRecord)
packs records into requests of at most MaxPayloadInMB; AssembleWith=Line puts a newline after every
response. Parameters come, in order of precedence, from the user, the container's
``GET /execution-parameters`` answer, and SageMaker's defaults (MultiRecord, 6 MB). Splitting and
batching are pure generators over streams, so memory stays about one payload.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable, Iterator, Sequence

from smlocal.errors import CustomerError
from smlocal.runtime.plan import DataObject

if TYPE_CHECKING:
    from smlocal.runtime.endpoint import Endpoint
    from smlocal.runtime.progress import Display

SPLIT_TYPES = ("None", "Line", "RecordIO")
STRATEGIES = ("SingleRecord", "MultiRecord")
ASSEMBLE = ("None", "Line")
DEFAULT_STRATEGY = "MultiRecord"
DEFAULT_MAX_PAYLOAD_MB = 6
MAX_PAYLOAD_MB = 100
_MB = 1024 * 1024
_CONTAINER_STRATEGY = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord"}


def _choice(value: str | None, choices: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    for choice in choices:
        if value.replace("_", "").lower() == choice.lower():
            return choice
    raise CustomerError(f"{what} {value!r} is not one of: {', '.join(choices)}.")


@dataclass(frozen=True)
class TransformParams:
    split_type: str = "None"
    strategy: str = DEFAULT_STRATEGY
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB  # 0: no limit
    assemble_with: str = "None"
    content_type: str | None = None
    accept: str | None = None

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * _MB


def resolve_params(*, split_type: str | None = None, strategy: str | None = None, max_payload_mb: int | None = None,
                   assemble_with: str | None = None, content_type: str | None = None, accept: str | None = None,
                   container: dict | None = None) -> TransformParams:
    """User values win, then the container's /execution-parameters answer, then the defaults."""
    container = container or {}
    strategy = _choice(strategy, STRATEGIES, "BatchStrategy")
    if strategy is None:
        strategy = _CONTAINER_STRATEGY.get(str(container.get("BatchStrategy", "")).upper(), DEFAULT_STRATEGY)
    if max_payload_mb is None:
        answer = container.get("MaxPayloadInMB")
        max_payload_mb = answer if isinstance(answer, int) and not isinstance(answer, bool) and answer >= 0 \
            else DEFAULT_MAX_PAYLOAD_MB
    if not 0 <= int(max_payload_mb) <= MAX_PAYLOAD_MB:
        raise CustomerError(f"MaxPayloadInMB must be between 0 and {MAX_PAYLOAD_MB}, got {max_payload_mb}.")
    return TransformParams(
        split_type=_choice(split_type, SPLIT_TYPES, "SplitType") or "None",
        strategy=strategy,
        max_payload_mb=int(max_payload_mb),
        assemble_with=_choice(assemble_with, ASSEMBLE, "AssembleWith") or "None",
        content_type=content_type,
        accept=accept,
    )


# ------------------------------------------------------------------------------------------ splitting
def split_records(stream: BinaryIO, split_type: str, source: str = "<input>",
                  chunk: int = 1 << 20) -> Iterator[bytes]:
    """The records of one input file: the whole file (None), its lines with their newline (Line),
    or its RecordIO records, each re-framed so a batch of them is valid RecordIO (RecordIO)."""
    if split_type == "None":
        yield stream.read()
    elif split_type == "Line":
        for line in stream:
            yield line
    elif split_type == "RecordIO":
        from smlocal.data.recordio import frame, iter_records

        for payload in iter_records(stream, source=source, chunk_size=chunk):
            yield frame(payload)
    else:
        raise CustomerError(f"SplitType {split_type!r} is not one of: {', '.join(SPLIT_TYPES)}.")


def batch_payloads(records: Iterable[bytes], strategy: str, max_bytes: int, source: str = "<input>") -> Iterator[bytes]:
    """Requests for ``records``: one per record (SingleRecord) or as many records as fit in
    ``max_bytes`` (MultiRecord). A record larger than the limit is an error naming it; 0 = no limit."""
    pending: list[bytes] = []
    size = 0
    for index, record in enumerate(records):
        if max_bytes and len(record) > max_bytes:
            raise CustomerError(
                f"Record {index} of {source} is {len(record)} bytes, over MaxPayloadInMB ({max_bytes // _MB} MB). "
                "Split the input (SplitType Line or RecordIO) or raise --max-payload-mb (at most 100)."
            )
        if strategy == "SingleRecord":
            yield record
            continue
        if pending and max_bytes and size + len(record) > max_bytes:
            yield b"".join(pending)
            pending, size = [], 0
        pending.append(record)
        size += len(record)
    if pending:
        yield b"".join(pending)


def input_files(input_path: Path) -> list[tuple[str, Path]]:
    """(key, file) for every input, sorted by key like an S3 listing; a single file is one input."""
    from smlocal.runtime.sources import local_files

    if not input_path.exists():
        raise CustomerError(f"Transform input {input_path} does not exist.")
    files = [(key, Path(path)) for key, path in local_files(input_path)]
    if not files:
        raise CustomerError(f"Transform input {input_path} holds no files.")
    return files


# ---------------------------------------------------------------------------------------------- run
def run_transform(endpoint: Endpoint, input_path: Path | None, output_path: Path, params: TransformParams,
                  display: Display | None = None, objects: Sequence[DataObject] | None = None) -> list[Path]:
    """Send every input through a running ``endpoint``; returns the output files.

    ``objects``: the inputs already listed (e.g. S3 objects streamed by their opener, see
    ``sources.transform_inputs``); by default the files under ``input_path``.
    A non-200 answer stops the transform with an error naming the file, the request and the answer.
    """
    if objects is None:
        objects = [DataObject(key, str(path)) for key, path in input_files(Path(input_path))]
    output_path = Path(output_path)
    task = display.task("transform", total=len(objects), unit="files") if display else None
    outputs = []
    for obj in objects:
        key, path = obj.key, obj.path  # path: a local file or an s3:// URI, for messages
        target = output_path / f"{key}.out"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        with obj.open() as src, open(tmp, "wb") as out:
            records = split_records(src, params.split_type, source=str(path))
            for number, payload in enumerate(batch_payloads(records, params.strategy, params.max_payload_bytes,
                                                            source=str(path))):
                resp = endpoint.invoke(payload, params.content_type or "application/octet-stream", params.accept)
                if resp.status != 200:
                    tmp.unlink(missing_ok=True)
                    raise CustomerError(
                        f"Transform of {path} failed: request {number} ({len(payload)} bytes) was answered "
                        f"{resp.status}: {resp.text()[:500]}"
                    )
                out.write(resp.body)
                if params.assemble_with == "Line" and not resp.body.endswith(b"\n"):
                    out.write(b"\n")
        tmp.replace(target)
        outputs.append(target)
        if task:
            task.advance()
    return outputs


def endpoint_env(strategy: str | None = None, max_payload_mb: int | None = None) -> dict[str, str]:
    """The batch environment SageMaker gives the model container; only what the user chose is forced."""
    env = {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1"}
    strategy = _choice(strategy, STRATEGIES, "BatchStrategy")
    if strategy:
        env["SAGEMAKER_BATCH_STRATEGY"] = "SINGLE_RECORD" if strategy == "SingleRecord" else "MULTI_RECORD"
    if max_payload_mb:  # 0 (no limit) is a transform setting; servers want a size
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(max_payload_mb)
    return env
