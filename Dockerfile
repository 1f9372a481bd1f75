# syntax=docker/dockerfile:1
# snapfind: the Telegram bot and its command line, serving an exported model without TensorFlow.
#
#   docker build -t snapfind .                                           # Lite0 (offline)
#   docker build --build-arg BAKE_WEIGHTS=efficientnetb7 -t snapfind .  # B7, exported at build
#
# TensorFlow lives only in the build stages: `deps` installs every dependency into a venv,
# `weights` fetches the chosen backbone's ImageNet weights, `build` adds snapfind, and `export`
# writes the backbone as a LiteRT or ONNX file (`snapfind export`, checked against Keras).
# `serve-deps` is a second venv without TensorFlow or tf2onnx; `runtime` copies it and the
# exported model onto a clean base, so neither TensorFlow nor a pip cache, wheel or build tool
# reaches the final image.
# `.ci/docker-smoke.sh` builds it offline (the Lite0 default) and smoke-runs it.

# The runtime dependencies, read from pyproject itself. Only this file's content keys the
# cache of the next stage: editing pyproject elsewhere does not re-fetch TensorFlow.
FROM python:3.11-slim AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >requirements.txt \
 && grep -Ev '^(tensorflow|tf2onnx)' requirements.txt >serve-requirements.txt

FROM python:3.11-slim AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A venv without pip of its own: the base image's pip installs into it, and stays behind.
RUN python -m venv --without-pip /opt/venv
WORKDIR /src
COPY --from=requirements /src/requirements.txt ./
# TensorFlow's C++ headers (290 MB) and libclang (60 MB) serve only to build extensions: dropped.
RUN pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.txt \
 && rm -rf /opt/venv/lib/python3.11/site-packages/tensorflow/include \
 && pip --python /opt/venv/bin/python uninstall --yes libclang

FROM deps AS weights
# A backbone name (see `snapfind backbones`): its ImageNet weights are fetched here (nothing
# for EfficientNet-Lite, whose weights ship inside snapfind) and it is exported below. The
# default needs no download; compose passes SNAPFIND_BACKBONE.
ARG BAKE_WEIGHTS=efficientnet-lite0
ENV KERAS_HOME=/opt/keras
COPY deploy/bake_weights.py /tmp/
RUN mkdir -p /opt/keras/models \
 && if [ -n "$BAKE_WEIGHTS" ]; then /opt/venv/bin/python /tmp/bake_weights.py "$BAKE_WEIGHTS"; fi

FROM deps AS build
COPY . .
# Built as a wheel and installed like any user would; --no-deps: the deps stage has them all.
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps . \
 && /opt/venv/bin/snapfind --help >/dev/null

FROM build AS export
# The backbone to serve; its export (minutes; B7, exported to ONNX, peaked at 12 GB of memory
# here) is the one model the runtime image can run.
ARG BAKE_WEIGHTS=efficientnet-lite0
# Its input side (compose passes SNAPFIND_INPUT_SIZE); empty: the backbone's own. The runtime
# image has no TensorFlow, so it serves only the size exported here.
ARG EXPORT_INPUT_SIZE=
ENV KERAS_HOME=/opt/keras TF_CPP_MIN_LOG_LEVEL=2
COPY --from=weights /opt/keras/models /opt/keras/models
RUN /opt/venv/bin/snapfind export --backbone "$BAKE_WEIGHTS" --weights imagenet \
      ${EXPORT_INPUT_SIZE:+--input-size "$EXPORT_INPUT_SIZE"} \
      --runtime-dir /opt/snapfind/runtime

FROM python:3.11-slim AS serve-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv --without-pip /opt/venv
WORKDIR /src
COPY --from=requirements /src/serve-requirements.txt ./
RUN pip --python /opt/venv/bin/python install --no-cache-dir -r serve-requirements.txt
COPY . .
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps . \
 && /opt/venv/bin/snapfind --help >/dev/null \
 && ! /opt/venv/bin/python -c "import tensorflow" 2>/dev/null

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="snapfind" \
      org.opencontainers.image.description="Telegram bot that finds furniture from a photo" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SNAPFIND_INDEX_DIR=/data/index \
    SNAPFIND_RUNTIME_DIR=/opt/snapfind/runtime
# A fixed uid, so host folders can be prepared for it (see deploy/cloud-init.yaml).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/snapfind snapfind \
 && mkdir -p /data/index /data/catalog \
 && chown snapfind:snapfind /data/index /data/catalog
COPY --from=serve-deps /opt/venv /opt/venv
# Root-owned: a running container cannot replace the model it serves.
COPY --from=export /opt/snapfind/runtime /opt/snapfind/runtime
USER 10001:10001
WORKDIR /home/snapfind
VOLUME ["/data/index", "/data/catalog"]
# The serving bot probes its worker and index every SNAPFIND_HEARTBEAT_INTERVAL seconds and
# touches this file; the health check only reads its age (no second model in memory).
# `snapfind health` without --heartbeat is the full check: index loads, extractor answers.
ENV SNAPFIND_HEARTBEAT_FILE=/tmp/snapfind/heartbeat
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
  CMD ["snapfind", "health", "--heartbeat"]
CMD ["snapfind", "bot"]
