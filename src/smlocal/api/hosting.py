"""A model's container definition (Image, ModelDataUrl, Environment) served by the runtime's Endpoint.

Shared by endpoints and transform jobs. The model data is fetched through the runtime's S3 layer (its
download cache); a framework model whose code is elsewhere (the SDK's ``SAGEMAKER_SUBMIT_DIRECTORY``,
an s3:// ``sourcedir.tar.gz``) is laid out as the framework containers see it: the model's files with
the code in ``code/``, where smlocal's server finds ``inference.py``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Mapping

from smlocal.api import images
from smlocal.api.context import Context

WORKERS = 1  # one server worker per local endpoint: small models, many endpoints on one machine


def _fetch(ctx: Context, location: str, label: str) -> Path:
    from smlocal.runtime.sources import local_object

    local = location[len("file://"):] if location.startswith("file://") else location
    return Path(local_object(local, ctx.s3, cache_dir=ctx.cache_dir, label=label))


def model_path(ctx: Context, container: Mapping, work: Path) -> Path:
    """What the runtime's Endpoint serves: the model.tar.gz, or a directory with the code added."""
    from smlocal.archives import copy_model_dir, safe_extract

    model = _fetch(ctx, container["ModelDataUrl"], "model") if container.get("ModelDataUrl") else None
    code = (container.get("Environment") or {}).get("SAGEMAKER_SUBMIT_DIRECTORY")
    if not code:
        if model is None:
            raise ValueError("The model has no ModelDataUrl: there is nothing to serve.")
        return model
    shutil.rmtree(work, ignore_errors=True)
    if model is not None and model.is_file():
        safe_extract(model, work)
    elif model is not None:
        copy_model_dir(model, work)
    source = _fetch(ctx, code, "source")
    if source.is_dir():
        shutil.copytree(source, work / "code", dirs_exist_ok=True)
    else:
        safe_extract(source, work / "code")
    return work


def backend_for(ctx: Context, image: str | None):
    from smlocal.runtime.jobspec import algorithm_from_image

    if not image or algorithm_from_image(image) or images.framework(image):
        return ctx.choose_backend(None, None, serving=True)
    return ctx.choose_backend(image, None)


def start(ctx: Context, container: Mapping, work: Path, log_path: Path, env: Mapping[str, str] | None = None,
          name: str = "endpoint"):
    """Start and wait for a server of ``container``; returns the runtime's running ``Endpoint``."""
    from smlocal.runtime.endpoint import Endpoint
    from smlocal.runtime.progress import Display

    model = model_path(ctx, container, work)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed with the endpoint (stop)
    full_env = {**(container.get("Environment") or {}), **(env or {})}
    endpoint = Endpoint(model, backend_for(ctx, container.get("Image")), env=full_env, name=name,
                        display=Display(live=False, stream=stream), workers=WORKERS)
    endpoint.log_stream = stream
    try:
        endpoint.start()
    except BaseException:
        stream.close()
        raise
    return endpoint


def stop(endpoint) -> None:
    endpoint.stop()
    stream = getattr(endpoint, "log_stream", None)
    if stream is not None:
        stream.close()
