#!/usr/bin/env bash
# Build the smlocal image (CPU or GPU), tag it :1 and :latest, and push it to Amazon ECR or to any registry.
#
#   scripts/build_and_push.sh                          # CPU image -> ECR repository "smlocal"
#   scripts/build_and_push.sh --gpu                    # GPU image -> ECR repository "smlocal-gpu"
#   scripts/build_and_push.sh --registry 127.0.0.1:5000  # any registry (no ECR, no AWS CLI)
#   scripts/build_and_push.sh --dry-run                # print every command, run none
#
# ECR: the account comes from `aws sts get-caller-identity` (or AWS_ACCOUNT_ID), the region from AWS_REGION,
# AWS_DEFAULT_REGION or `aws configure get region`; the repository is created when missing and docker logs
# in with `aws ecr get-login-password`. Use the pushed URI as image_uri in the SageMaker SDK.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/build_and_push.sh [options]
  --gpu               build Dockerfile.gpu (CUDA 12 + CuPy) instead of the CPU Dockerfile
  --name NAME         image / repository name (default: smlocal, or smlocal-gpu with --gpu)
  --algorithm ALGO    default SMLOCAL_ALGORITHM baked into the image: kmeans | linear-learner (default kmeans)
  --version TAG       version tag pushed besides :latest (default: 1)
  --registry HOST[:PORT][/PATH]  push there instead of ECR (no AWS calls)
  --region REGION     ECR region (default: AWS_REGION, AWS_DEFAULT_REGION, then `aws configure get region`)
  --platform P        passed to docker build (e.g. linux/amd64 when building on an ARM machine for SageMaker)
  --no-build          push an image already built and tagged NAME:VERSION
  --dry-run           print the commands instead of running them (needs neither Docker nor AWS credentials)
  -h, --help          this text
EOF
}

die() { echo "build_and_push: $*" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gpu=0 name="" algorithm=kmeans version=1 registry="" region="" platform="" build=1 dry_run=0
while (($#)); do
  case $1 in
    --gpu) gpu=1 ;;
    --name) name=${2:?--name needs a value}; shift ;;
    --algorithm) algorithm=${2:?--algorithm needs a value}; shift ;;
    --version) version=${2:?--version needs a value}; shift ;;
    --registry) registry=${2:?--registry needs a value}; shift ;;
    --region) region=${2:?--region needs a value}; shift ;;
    --platform) platform=${2:?--platform needs a value}; shift ;;
    --no-build) build=0 ;;
    --dry-run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
  shift
done
case $algorithm in kmeans | linear-learner) ;; *) die "--algorithm must be kmeans or linear-learner, not '$algorithm'" ;; esac
[[ $name =~ ^[a-z0-9]+([._/-][a-z0-9]+)*$ || -z $name ]] || die "invalid image name '$name' (lowercase letters, digits, . _ - /)"
if ((gpu)); then dockerfile=Dockerfile.gpu; name=${name:-smlocal-gpu}; else dockerfile=Dockerfile; name=${name:-smlocal}; fi

# Print a command in a form that can be pasted back into a shell.
show() {
  local out="" arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then out+="$arg "; else out+="'${arg//\'/\'\\\'\'}' "; fi
  done
  echo "${out% }"
}
# Run a command, or only print it with --dry-run.
run() {
  if ((dry_run)); then show "$@"; else echo "+ $(show "$@")" >&2; "$@"; fi
}

# ---- where the image goes ----
if [[ -n $registry ]]; then
  target=${registry%/}
else
  if [[ -z $region ]]; then
    region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
  fi
  account=${AWS_ACCOUNT_ID:-}
  if ((dry_run)); then
    [[ -n $account ]] || { show aws sts get-caller-identity --query Account --output text; account="<account>"; }
    [[ -n $region ]] || { show aws configure get region; region="<region>"; }
  else
    command -v aws >/dev/null || die "the AWS CLI is needed to push to ECR (or use --registry HOST:PORT)"
    if [[ -z $account ]]; then
      echo "+ aws sts get-caller-identity --query Account --output text" >&2
      account=$(aws sts get-caller-identity --query Account --output text) \
        || die "could not read the AWS account: configure credentials (aws configure) or set AWS_ACCOUNT_ID"
    fi
    if [[ -z $region ]]; then
      region=$(aws configure get region || true)
      [[ -n $region ]] || die "no AWS region: pass --region, set AWS_REGION or run aws configure"
    fi
  fi
  target="${account}.dkr.ecr.${region}.amazonaws.com"
fi
remote="${target}/${name}"

# ---- build ----
if ((build)); then
  build_cmd=(docker build --network host -f "$ROOT/$dockerfile" --build-arg "SMLOCAL_ALGORITHM=$algorithm")
  [[ -z $platform ]] || build_cmd+=(--platform "$platform")
  build_cmd+=(-t "${name}:${version}" -t "${name}:latest" "$ROOT")
  run "${build_cmd[@]}"
fi

# ---- ECR repository and login ----
if [[ -z $registry ]]; then
  if ((dry_run)); then
    echo "$(show aws ecr describe-repositories --region "$region" --repository-names "$name") >/dev/null 2>&1" \
      "|| $(show aws ecr create-repository --region "$region" --repository-name "$name") >/dev/null"
    echo "$(show aws ecr get-login-password --region "$region")" \
      "| $(show docker login --username AWS --password-stdin "$target")"
  else
    if ! aws ecr describe-repositories --region "$region" --repository-names "$name" >/dev/null 2>&1; then
      echo "+ aws ecr create-repository --region $region --repository-name $name" >&2
      aws ecr create-repository --region "$region" --repository-name "$name" >/dev/null
    fi
    echo "+ aws ecr get-login-password --region $region | docker login --username AWS --password-stdin $target" >&2
    aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$target"
  fi
fi

# ---- tag and push :VERSION and :latest ----
for tag in "$version" latest; do
  run docker tag "${name}:${version}" "${remote}:${tag}"
  run docker push "${remote}:${tag}"
done
if ((dry_run)); then
  echo "# image_uri: ${remote}:${version}" >&2
else
  echo "pushed ${remote}:${version} and ${remote}:latest" >&2
fi
