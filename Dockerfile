# smlocal CPU image: SageMaker-compatible built-in k-means and linear learner.
#
#   docker build --network host -t smlocal .
#   docker run --rm -v "$PWD/opt_ml:/opt/ml" smlocal train
#   docker run --rm --network host -v "$PWD/opt_ml/model:/opt/ml/model" smlocal serve
#
# SageMaker runs `docker run IMAGE train|serve`: `train` and `serve` are executables on PATH and the only
# ENTRYPOINT is tini, which runs whatever command is given (so `docker run IMAGE python ...` works too),
# forwards SIGTERM from `docker stop` / StopTrainingJob and reaps children. Any working directory works.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- deps: a venv with the pinned runtime dependencies (+ MXNet), cached apart from the source ----
FROM ${PYTHON_IMAGE} AS deps
# optional-dependency groups of pyproject.toml to add; "mxnet" keeps users' mx.nd.load and KVStore working
ARG SMLOCAL_EXTRAS=mxnet
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /build
COPY pyproject.toml constraints.txt ./
# Runtime deps are read from pyproject.toml (no duplicate list to drift) and pinned by constraints.txt.
# The libraries' own test suites are dropped: they are ~60 MB the image never runs.
RUN python -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = [e for e in sys.argv[1].split(',') if e]; \
print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
      "$SMLOCAL_EXTRAS" > requirements.txt \
 && cat requirements.txt \
 && /opt/venv/bin/pip install -c constraints.txt -r requirements.txt \
 && find /opt/venv/lib -depth -type d -name tests -path '*/site-packages/*' -exec rm -rf {} +

# ---- package: the smlocal wheel, rebuilt when src/ changes without touching the deps layer ----
FROM deps AS package
# pyproject.toml is repeated so the COPY has a source when README.md/LICENSE are absent
COPY pyproject.toml README.md* LICENSE* ./
COPY src ./src
RUN /opt/venv/bin/pip wheel --no-deps -w /wheels .

# ---- runtime: base + the two system libraries MXNet loads + tini + nginx + the venv; no compilers, no pip cache ----
FROM ${PYTHON_IMAGE}
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      org.opencontainers.image.title="smlocal" \
      org.opencontainers.image.description="SageMaker-compatible built-in k-means and linear learner (train, serve)"
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libquadmath0 tini nginx \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/log/apt /var/log/dpkg.log
COPY --from=deps /opt/venv /opt/venv
COPY --from=package /wheels /tmp/wheels
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-index /tmp/wheels/*.whl && rm -rf /tmp/wheels
COPY container/train container/serve /opt/smlocal/container/
# `serve` puts nginx in front of gunicorn (as SageMaker's serving examples do), so a slow client holds an
# nginx connection and never a model worker; SMLOCAL_NGINX=0 serves with gunicorn alone.
# declared last so that images built for another default algorithm share every layer
ARG SMLOCAL_ALGORITHM=kmeans
ENV PATH=/opt/smlocal/container:/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    SMLOCAL_ALGORITHM=${SMLOCAL_ALGORITHM}
# The entry points run as PID 1's child: a Python PID 1 would ignore SIGTERM and be killed only by SIGKILL.
ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
# `docker run IMAGE` alone trains
CMD ["train"]
