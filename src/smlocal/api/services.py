"""The operation tables: each SageMaker and Logs operation name -> the resource handler that answers it."""
from __future__ import annotations

from smlocal.api.context import Context
from smlocal.api.endpoints import Endpoints
from smlocal.api.logs import Logs, Stream
from smlocal.api.models import EndpointConfigs, Models
from smlocal.api.tags import list_tags
from smlocal.api.training import TrainingJobs
from smlocal.api.transform import TransformJobs
from smlocal.api.tuning import TuningJobs

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_GROUP = "/aws/sagemaker/TransformJobs"
ENDPOINT_GROUP = "/aws/sagemaker/Endpoints/"


class Services:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.training = TrainingJobs(ctx)
        self.models = Models(ctx)
        self.configs = EndpointConfigs(ctx, self.models)
        self.endpoints = Endpoints(ctx, self.models, self.configs)
        self.transforms = TransformJobs(ctx, self.models)
        self.tuning = TuningJobs(ctx, self.training)
        self.logs = Logs([self._training_streams, self._transform_streams, self._endpoint_streams])
        self.invoke = self.endpoints.invoke

    def sagemaker_handlers(self) -> dict:
        t, m, c, e, x = self.training, self.models, self.configs, self.endpoints, self.transforms
        return {
            "CreateTrainingJob": t.create, "DescribeTrainingJob": t.describe, "ListTrainingJobs": t.list,
            "StopTrainingJob": t.stop,
            "CreateModel": m.create, "DescribeModel": m.describe, "DeleteModel": m.delete, "ListModels": m.list,
            "CreateEndpointConfig": c.create, "DescribeEndpointConfig": c.describe,
            "DeleteEndpointConfig": c.delete, "ListEndpointConfigs": c.list,
            "CreateEndpoint": e.create, "DescribeEndpoint": e.describe, "UpdateEndpoint": e.update,
            "DeleteEndpoint": e.delete, "ListEndpoints": e.list,
            "CreateTransformJob": x.create, "DescribeTransformJob": x.describe, "ListTransformJobs": x.list,
            "StopTransformJob": x.stop,
            "ListTags": lambda body: list_tags(self.ctx.store, body),
            **self._tuning_handlers(),
        }

    def _tuning_handlers(self) -> dict:
        h = self.tuning
        return {"CreateHyperParameterTuningJob": h.create, "DescribeHyperParameterTuningJob": h.describe,
                "ListHyperParameterTuningJobs": h.list, "StopHyperParameterTuningJob": h.stop,
                "ListTrainingJobsForHyperParameterTuningJob": h.list_training_jobs}

    def logs_handlers(self) -> dict:
        return {"DescribeLogStreams": self.logs.describe_log_streams, "GetLogEvents": self.logs.get_log_events,
                "FilterLogEvents": self.logs.filter_log_events}

    # ---------------------------------------------------------------------------------- log groups
    def _training_streams(self, group: str) -> list[Stream] | None:
        if group != TRAINING_GROUP:
            return None
        streams = []
        for record in self.ctx.store.all("training-jobs"):
            files, created = self.training.log_files(record["TrainingJobName"])
            streams += [Stream(f"{record['TrainingJobName']}/{host}-{int(created)}", _path(p), int(created * 1000))
                        for host, p in files.items()]
        return streams

    def _transform_streams(self, group: str) -> list[Stream] | None:
        if group != TRANSFORM_GROUP:
            return None
        return [Stream(f"{r['TransformJobName']}/{host}-{int(r['CreationTime'])}", _path(p),
                       int(r["CreationTime"] * 1000))
                for r in self.ctx.store.all("transform-jobs") for host, p in self.transforms.log_files(r).items()]

    def _endpoint_streams(self, group: str) -> list[Stream] | None:
        if not group.startswith(ENDPOINT_GROUP):
            return None
        record = self.ctx.store.get("endpoints", group[len(ENDPOINT_GROUP):])
        if record is None:
            return None
        path = self.endpoints.log_file(record["EndpointName"])
        return [Stream(f"AllTraffic/{int(record['CreationTime'])}", path, int(record["CreationTime"] * 1000))]

    # ---------------------------------------------------------------------------------- lifecycle
    def resume(self) -> None:
        self.training.resume()
        self.tuning.resume()
        self.transforms.resume()
        self.endpoints.resume()

    def shutdown(self) -> None:
        self.endpoints.shutdown()


def _path(value: str):
    from pathlib import Path

    return Path(value)
