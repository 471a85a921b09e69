"""Transform jobs: CreateTransformJob / Describe / List / Stop over the runtime's batch transform.

The job serves its model (``hosting``), sends every input object through it with the runtime's
``run_transform`` (SplitType, BatchStrategy, MaxPayloadInMB, AssembleWith as given, else the
container's ``/execution-parameters``, else SageMaker's defaults) and writes ``<key>.out`` below the
S3OutputPath, as ``smlocal transform`` does. StopTransformJob stops its server.
"""
from __future__ import annotations

import threading

from smlocal.api import hosting, listing
from smlocal.api.context import Context
from smlocal.api.models import Models
from smlocal.api.protocol import arn, failure_reason, in_use, not_found, now, validation

KIND = "transform-jobs"
HOST = "algo-1"


class TransformJobs:
    def __init__(self, ctx: Context, models: Models):
        self.ctx, self.models = ctx, models
        self.running: dict = {}  # name -> runtime Endpoint
        self.stopping: set[str] = set()
        self._lock = threading.Lock()

    def arn(self, name: str) -> str:
        return arn("sagemaker", self.ctx.region, "transform-job", name)

    def log_files(self, record: dict) -> dict:
        path = self.ctx.store.work_dir(KIND) / f"{record['TransformJobName']}.log"
        return {HOST: str(path)} if path.exists() else {}

    def get(self, name: str) -> dict:
        return self.ctx.store.require(KIND, name, lambda: not_found(f"Could not find requested job with name {name}"))

    def create(self, body: dict) -> dict:
        name = body["TransformJobName"]
        self.models.get(body["ModelName"])
        source = body["TransformInput"]["DataSource"]["S3DataSource"]
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise validation("TransformInput.DataSource.S3DataSource.S3DataType: only S3Prefix is supported "
                             "locally.")
        created = now()
        record = {**{k: v for k, v in body.items() if k != "Tags"}, "TransformJobArn": self.arn(name),
                  "TransformJobStatus": "InProgress", "CreationTime": created, "LastModifiedTime": created}
        self.ctx.store.create(KIND, name, record, lambda: in_use(f"Job name must be unique within an AWS account "
                                                                 f"and region, and a job with this name already "
                                                                 f"exists ({self.arn(name)})"))
        self.ctx.spawn(self._run, name, name=f"transform-{name}")
        return {"TransformJobArn": record["TransformJobArn"]}

    def _run(self, name: str) -> None:
        record = self.get(name)
        self.ctx.store.update(KIND, name, lambda r: r.update(TransformStartTime=now()))
        try:
            self._transform(record)
            status, reason = "Completed", None
        except Exception as exc:  # noqa: BLE001 - the job's FailureReason
            status = "Failed"
            reason = failure_reason(exc)
        if name in self.stopping:
            status, reason = "Stopped", None
        self.ctx.store.update(KIND, name, lambda r: _finished(r, status, reason))

    def _transform(self, record: dict) -> None:
        from smlocal.runtime import sources, transform

        name = record["TransformJobName"]
        source = record["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        output = record["TransformOutput"]
        inputs = sources.transform_inputs(source, self.ctx.s3)  # listed before the server starts
        strategy, payload = record.get("BatchStrategy"), record.get("MaxPayloadInMB")
        env = {**transform.endpoint_env(strategy, payload), **(record.get("Environment") or {})}
        work = self.ctx.store.work_dir(KIND) / f"{name}.model"
        log_path = self.ctx.store.work_dir(KIND) / f"{name}.log"
        with sources.staged_output(output["S3OutputPath"], self.ctx.s3) as output_dir:
            endpoint = hosting.start(self.ctx, self.models.container(record["ModelName"]), work, log_path,
                                     env=env, name=f"transform-{name}")
            with self._lock:
                self.running[name] = endpoint
            try:
                params = transform.resolve_params(
                    split_type=record["TransformInput"].get("SplitType"), strategy=strategy,
                    max_payload_mb=payload, assemble_with=output.get("AssembleWith"),
                    content_type=record["TransformInput"].get("ContentType"), accept=output.get("Accept"),
                    container=endpoint.execution_parameters())
                transform.run_transform(endpoint, None, output_dir, params, None, objects=inputs)
            finally:
                with self._lock:
                    self.running.pop(name, None)
                hosting.stop(endpoint)

    def describe(self, body: dict) -> dict:
        return self.get(body["TransformJobName"])

    def list(self, body: dict) -> dict:
        return listing.page(self.ctx.store.all(KIND), body, name_key="TransformJobName",
                            status_key="TransformJobStatus",
                            summary=lambda r: listing.pick(r, "TransformJobName", "TransformJobArn", "CreationTime",
                                                           "TransformEndTime", "LastModifiedTime",
                                                           "TransformJobStatus", "FailureReason"),
                            result_key="TransformJobSummaries")

    def stop(self, body: dict) -> dict:
        name = body["TransformJobName"]
        record = self.get(name)
        if record["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return {}
        self.stopping.add(name)
        self.ctx.store.update(KIND, name, lambda r: r.update(TransformJobStatus="Stopping", LastModifiedTime=now()))
        with self._lock:
            endpoint = self.running.get(name)
        if endpoint is not None:
            endpoint.stop()
        return {}

    def resume(self) -> None:
        self.ctx.store.update_each(KIND, "TransformJobStatus", ("InProgress", "Stopping"), lambda r: _finished(
            r, "Failed", "InternalServerError: the smlocal api server stopped while the job ran."))


def _finished(record: dict, status: str, reason: str | None) -> None:
    end = now()
    record.update({"TransformJobStatus": status, "TransformEndTime": end, "LastModifiedTime": end})
    if reason:
        record["FailureReason"] = reason[:1024]
