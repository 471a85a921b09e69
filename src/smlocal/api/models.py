"""Models and endpoint configurations: stored records, as CreateModel / CreateEndpointConfig keep them.

Both are plain definitions (nothing runs until an endpoint or transform job uses them). Errors are the
service's own: a name in use or unknown is a ``ValidationException`` ("Cannot create already existing
model", "Could not find model"), the phrases the SDK itself looks for.
"""
from __future__ import annotations

from smlocal.api import listing
from smlocal.api.context import Context
from smlocal.api.protocol import arn, now, validation


class _Definitions:
    """Create / Describe / Delete / List for one kind of stored definition."""

    kind = ""  # store folder
    noun = ""  # in messages
    name_key = arn_key = result_key = arn_kind = ""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def arn(self, name: str) -> str:
        return arn("sagemaker", self.ctx.region, self.arn_kind, name)

    def get(self, name: str) -> dict:
        return self.ctx.store.require(self.kind, name,
                                      lambda: validation(f'Could not find {self.noun} "{self.arn(name)}".'))

    def check(self, body: dict) -> None:
        """Cross-field rules beyond the request shape."""

    def create(self, body: dict) -> dict:
        name = body[self.name_key]
        self.check(body)
        record = {**{k: v for k, v in body.items() if k != "Tags"}, self.arn_key: self.arn(name),
                  "CreationTime": now()}
        self.ctx.store.create(self.kind, name, record,
                              lambda: validation(f'Cannot create already existing {self.noun} "{self.arn(name)}".'))
        return {self.arn_key: record[self.arn_key]}

    def describe(self, body: dict) -> dict:
        return self.get(body[self.name_key])

    def delete(self, body: dict) -> dict:
        name = body[self.name_key]
        self.get(name)
        self.ctx.store.delete(self.kind, name)
        return {}

    def list(self, body: dict) -> dict:
        return listing.page(self.ctx.store.all(self.kind), body, name_key=self.name_key, status_key=None,
                            summary=lambda r: listing.pick(r, self.name_key, self.arn_key, "CreationTime"),
                            result_key=self.result_key)


class Models(_Definitions):
    kind, noun, arn_kind = "models", "model", "model"
    name_key, arn_key, result_key = "ModelName", "ModelArn", "Models"

    def check(self, body: dict) -> None:
        if not body.get("PrimaryContainer") and not body.get("Containers"):
            raise validation("1 validation error detected: either PrimaryContainer or Containers must be given.")

    def container(self, name: str) -> dict:
        """The model's (first) container definition: Image, ModelDataUrl, Environment."""
        record = self.get(name)
        return record.get("PrimaryContainer") or record["Containers"][0]


class EndpointConfigs(_Definitions):
    kind, noun, arn_kind = "endpoint-configs", "endpoint configuration", "endpoint-config"
    name_key, arn_key, result_key = "EndpointConfigName", "EndpointConfigArn", "EndpointConfigs"

    def __init__(self, ctx: Context, models: Models):
        super().__init__(ctx)
        self.models = models

    def check(self, body: dict) -> None:
        for variant in body["ProductionVariants"]:
            self.models.get(variant["ModelName"])
