#!/usr/bin/env bash
# Install smlocal with its pinned test dependencies into .venv and run the whole test suite.
# Container tests need a Docker engine: beside ../shared (CI, developer machines) the engine and the
# base-image stand-ins come from ../shared/ci/docker-up.sh; elsewhere they skip with a reason.
# A second lane then runs the tests of numpy-dependent code again without MXNet on numpy 2
# (constraints-numpy2.txt): what `pip install smlocal` gives and what the GPU machine runs. It leaves out
# the container tests, the SageMaker API tests (pure Python over the same jobs, which the functional
# tests run in this lane too) and the serving soak (a load test of the same server): about 5 minutes.
# SMLOCAL_NUMPY2_LANE=0 leaves it out. Extra arguments go to pytest, in both lanes.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
if [[ -x ../shared/ci/docker-up.sh && ${SMLOCAL_NO_DOCKER:-0} != 1 ]]; then
  # the engine plus stand-ins for both Dockerfiles' base images (no Docker Hub here)
  if up=$(../shared/ci/docker-up.sh python:3.11-slim nvidia/cuda:12.4.1-runtime-ubuntu22.04); then
    eval "$up"
    # a real registry on loopback for the push test (Debian's docker-registry); needs root
    if ! command -v docker-registry >/dev/null && [[ $(id -u) == 0 ]]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq --no-install-recommends docker-registry >&2 \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-registry >&2; } \
        || echo "test.sh: docker-registry could not be installed; the push test will skip" >&2
    fi
  else
    echo "test.sh: no Docker engine could be started; container tests will skip" >&2
  fi
fi
status=0
.venv/bin/python -m pytest --durations=15 "$@" || status=$?
if [[ ${SMLOCAL_NUMPY2_LANE:-1} != 0 ]]; then
  echo "test.sh: numpy 2 lane (no MXNet, no container tests)" >&2
  python3 -m venv .venv-numpy2
  .venv-numpy2/bin/pip install -q --disable-pip-version-check -c constraints-numpy2.txt -e '.[test-core]'
  lane=0
  .venv-numpy2/bin/python -m pytest --durations=15 --ignore=tests/container --ignore=tests/api \
    --ignore=tests/functional/test_serve_soak.py "$@" || lane=$?
  # 5: every test asked for was a container test, so none was left for this lane
  [[ $lane == 0 || $lane == 5 ]] || status=$lane
fi
exit $status
