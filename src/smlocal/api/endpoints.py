"""Endpoints: Create / Describe / Update / Delete / List, and InvokeEndpoint routed to the live server.

An endpoint is ``Creating`` while its model's server starts on a thread (the runtime's Endpoint on a
free loopback port), then ``InService`` or ``Failed`` with the reason. UpdateEndpoint starts the new
configuration's server and swaps it in (the old one keeps answering meanwhile); DeleteEndpoint stops
the server. After a restart, endpoints that were in service are started again.
"""
from __future__ import annotations

import threading

from werkzeug.wrappers import Request, Response

from smlocal.api import hosting, listing
from smlocal.api.app import error_response
from smlocal.api.context import Context
from smlocal.api.models import EndpointConfigs, Models
from smlocal.api.protocol import ACCOUNT, ApiError, arn, failure_reason, now, validation

KIND = "endpoints"
_CUSTOM = "X-Amzn-SageMaker-Custom-Attributes"


class Endpoints:
    def __init__(self, ctx: Context, models: Models, configs: EndpointConfigs):
        self.ctx, self.models, self.configs = ctx, models, configs
        self.live: dict = {}  # name -> (runtime Endpoint, variant name)
        self._lock = threading.Lock()

    def arn(self, name: str) -> str:
        return arn("sagemaker", self.ctx.region, "endpoint", name)

    def log_file(self, name: str):
        return self.ctx.store.work_dir(KIND) / f"{name}.log"

    def get(self, name: str) -> dict:
        return self.ctx.store.require(KIND, name, lambda: validation(f'Could not find endpoint "{self.arn(name)}".'))

    # ------------------------------------------------------------------------------------ create
    def create(self, body: dict) -> dict:
        name, config = body["EndpointName"], body["EndpointConfigName"]
        self.configs.get(config)
        created = now()
        record = {"EndpointName": name, "EndpointArn": self.arn(name), "EndpointConfigName": config,
                  "EndpointStatus": "Creating", "CreationTime": created, "LastModifiedTime": created}
        self.ctx.store.create(KIND, name, record,
                              lambda: validation(f'Cannot create already existing endpoint "{self.arn(name)}".'))
        self.ctx.spawn(self._serve, name, config, name=f"endpoint-{name}")
        return {"EndpointArn": record["EndpointArn"]}

    def _serve(self, name: str, config_name: str) -> None:
        """Start the config's first variant; swap it in for any server already running."""
        try:
            config = self.configs.get(config_name)
            variant = config["ProductionVariants"][0]
            container = self.models.container(variant["ModelName"])
            work = self.ctx.store.work_dir(KIND) / f"{name}.{config_name}.model"
            endpoint = hosting.start(self.ctx, container, work, self.log_file(name), name=name)
        except Exception as exc:  # noqa: BLE001 - the endpoint's FailureReason
            reason = failure_reason(exc)
            self.ctx.store.update(KIND, name, lambda r: self._failed(r, reason))
            return
        with self._lock:
            old = self.live.get(name)
            self.live[name] = (endpoint, variant["VariantName"])
        if old is not None:
            hosting.stop(old[0])
        if self.ctx.store.update(KIND, name, lambda r: self._in_service(r, config, variant)) is None:
            self._stop(name)  # deleted while it started

    @staticmethod
    def _failed(record: dict, reason: str) -> None:
        updating = record["EndpointStatus"] == "Updating"
        record.update({"EndpointStatus": "InService" if updating else "Failed", "FailureReason": reason[:1024],
                       "LastModifiedTime": now()})

    @staticmethod
    def _in_service(record: dict, config: dict, variant: dict) -> None:
        record.pop("FailureReason", None)
        record.update({"EndpointStatus": "InService", "EndpointConfigName": config["EndpointConfigName"],
                       "LastModifiedTime": now(),
                       "ProductionVariants": [{"VariantName": variant["VariantName"], "CurrentWeight": 1.0,
                                               "DesiredWeight": 1.0,
                                               "CurrentInstanceCount": variant.get("InitialInstanceCount", 1),
                                               "DesiredInstanceCount": variant.get("InitialInstanceCount", 1)}]})

    # ------------------------------------------------------------------------------- the others
    def describe(self, body: dict) -> dict:
        return self.get(body["EndpointName"])

    def update(self, body: dict) -> dict:
        name, config = body["EndpointName"], body["EndpointConfigName"]
        record = self.get(name)
        self.configs.get(config)
        if record["EndpointStatus"] not in ("InService", "Failed"):
            raise validation(f'Cannot update in-progress endpoint "{self.arn(name)}".')
        self.ctx.store.update(KIND, name, lambda r: r.update(EndpointStatus="Updating", LastModifiedTime=now()))
        self.ctx.spawn(self._serve, name, config, name=f"endpoint-{name}")
        return {"EndpointArn": record["EndpointArn"]}

    def _stop(self, name: str) -> None:
        with self._lock:
            live = self.live.pop(name, None)
        if live is not None:
            hosting.stop(live[0])

    def delete(self, body: dict) -> dict:
        name = body["EndpointName"]
        self.get(name)
        self.ctx.store.delete(KIND, name)
        self._stop(name)
        return {}

    def list(self, body: dict) -> dict:
        return listing.page(self.ctx.store.all(KIND), body, name_key="EndpointName", status_key="EndpointStatus",
                            summary=lambda r: listing.pick(r, "EndpointName", "EndpointArn", "CreationTime",
                                                           "LastModifiedTime", "EndpointStatus"),
                            result_key="Endpoints")

    def resume(self) -> None:
        """After a restart: bring back what was in service (or on its way)."""
        restarted = self.ctx.store.update_each(KIND, "EndpointStatus", ("InService", "Creating", "Updating"),
                                               lambda r: r.update(EndpointStatus="Creating"))
        for record in restarted:
            name = record["EndpointName"]
            self.ctx.spawn(self._serve, name, record["EndpointConfigName"], name=f"endpoint-{name}")

    def shutdown(self) -> None:
        for name in list(self.live):
            self._stop(name)

    # ------------------------------------------------------------------------------------ invoke
    def invoke(self, request: Request, name: str) -> Response:
        """InvokeEndpoint: the body, ContentType, Accept and CustomAttributes passed to the server (and
        the container's CustomAttributes answer passed back)."""
        live = self.live.get(name)
        if live is None:
            return error_response(validation(f"Endpoint {name} of account {ACCOUNT} not found."),
                                  "application/json")
        endpoint, variant = live
        custom = {_CUSTOM: request.headers[_CUSTOM]} if request.headers.get(_CUSTOM) else None
        answer = endpoint.invoke(request.get_data(), request.headers.get("Content-Type", "application/octet-stream"),
                                 request.headers.get("Accept") or None, headers=custom)
        if answer.status != 200:
            error = ApiError("ModelError", f"Received client error ({answer.status}) from primary with message "
                                           f"\"{answer.text()[:1000]}\".", 424, OriginalStatusCode=answer.status,
                             OriginalMessage=answer.text()[:1000], LogStreamArn=f"/aws/sagemaker/Endpoints/{name}")
            return error_response(error, "application/json")
        response = Response(answer.body, status=200, content_type=answer.content_type or "application/json")
        response.headers["x-Amzn-Invoked-Production-Variant"] = variant
        answered = {k.lower(): v for k, v in answer.headers.items()}.get(_CUSTOM.lower())
        if answered:
            response.headers[_CUSTOM] = answered
        return response
