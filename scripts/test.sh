#!/usr/bin/env bash
# Install smlocal with its pinned test dependencies into .venv and run the whole test suite.
# Container tests need a Docker engine: beside ../shared (CI, developer machines) the engine and the
# base-image stand-ins come from ../shared/ci/docker-up.sh; elsewhere they skip with a reason.
# A second lane then runs the tests of numpy-dependent code again without MXNet on numpy 2
# (constraints-numpy2.txt): what `pip install smlocal` gives and what the GPU machine runs: the unit,
# fuzz and compatibility tests and the functional tests of the algorithms, data errors and serving.
# It leaves out what only orchestrates the same jobs (runtime, S3, engines, tuning, script mode, the
# SageMaker API), the benchmarks' smoke runs, the serving soak and the container tests. Its venv is
# installed while the first lane runs. SMLOCAL_NUMPY2_LANE=0 leaves it out. Extra arguments go to
# pytest, in both lanes; test paths among them replace the second lane's own.
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
numpy2=${SMLOCAL_NUMPY2_LANE:-1}
if [[ $numpy2 != 0 ]]; then  # mostly unpacking wheels: one core, beside the first lane's tests
  { python3 -m venv .venv-numpy2 &&
    .venv-numpy2/bin/pip install -q --disable-pip-version-check -c constraints-numpy2.txt -e '.[test-core]'
  } > .venv-numpy2.log 2>&1 &
  install=$!
fi
status=0
.venv/bin/python -m pytest --durations=15 "$@" || status=$?
if [[ $numpy2 != 0 ]]; then
  echo "test.sh: numpy 2 lane (no MXNet, no container tests)" >&2
  wait $install || { cat .venv-numpy2.log >&2; exit 1; }
  paths=(tests/unit tests/fuzz tests/compat tests/functional/test_data_errors.py
         tests/functional/test_kmeans_train.py tests/functional/test_linear_learner_errors.py
         tests/functional/test_linear_learner_small_sets.py tests/functional/test_linear_learner_train.py
         tests/functional/test_multihost.py tests/functional/test_serve_live.py)
  for arg in "$@"; do [[ -e ${arg%%::*} ]] && paths=(); done
  lane=0
  .venv-numpy2/bin/python -m pytest --durations=15 --ignore=tests/container "${paths[@]}" "$@" || lane=$?
  # 5: every test asked for was a container test, so none was left for this lane
  [[ $lane == 0 || $lane == 5 ]] || status=$lane
fi
exit $status
