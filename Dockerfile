# syntax=docker/dockerfile:1
# snapfind: the Telegram bot and its command line on CPU TensorFlow.
#
#   docker build -t snapfind .                                          # downloads no model weights
#   docker build --build-arg BAKE_WEIGHTS=efficientnetb7 -t snapfind .  # ImageNet weights baked in
#
# `deps` installs the dependencies into a venv, `build` adds snapfind as a package, `weights`
# fetches the chosen backbone's ImageNet weights (or nothing); `runtime` copies only the venv and
# the weights onto a clean base, so no pip cache, wheel or build tool reaches the final image.

# The runtime dependencies, read from pyproject itself. Only this file's content keys the
# cache of the next stage: editing pyproject elsewhere does not re-fetch TensorFlow.
FROM python:3.11-slim AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >requirements.txt

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
# A backbone name (see `snapfind backbones`); empty = bake nothing, download nothing.
ARG BAKE_WEIGHTS=""
ENV KERAS_HOME=/opt/keras
COPY deploy/bake_weights.py /tmp/
RUN mkdir -p /opt/keras/models \
 && if [ -n "$BAKE_WEIGHTS" ]; then /opt/venv/bin/python /tmp/bake_weights.py "$BAKE_WEIGHTS"; fi

FROM deps AS build
COPY . .
# Built as a wheel and installed like any user would; --no-deps: the deps stage has them all.
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps . \
 && /opt/venv/bin/snapfind --help >/dev/null

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="snapfind" \
      org.opencontainers.image.description="Telegram bot that finds furniture from a photo" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KERAS_HOME=/opt/keras \
    TF_CPP_MIN_LOG_LEVEL=2 \
    SNAPFIND_INDEX_DIR=/data/index
# A fixed uid, so host folders can be prepared for it (see deploy/cloud-init.yaml).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/snapfind snapfind \
 && mkdir -p /data/index /data/catalog /opt/keras \
 && chown snapfind:snapfind /data/index /data/catalog /opt/keras
COPY --from=build /opt/venv /opt/venv
# Keras only reads its cache when KERAS_HOME is writable (hence the chown above); the weights
# below stay root-owned, so a running container cannot replace or add any.
COPY --from=weights /opt/keras/models /opt/keras/models
USER 10001:10001
WORKDIR /home/snapfind
VOLUME ["/data/index", "/data/catalog"]
# The serving bot probes its worker and index every SNAPFIND_HEARTBEAT_INTERVAL seconds and
# touches this file; the health check only reads its age (no second TensorFlow process).
# `snapfind health` without --heartbeat is the full check: index loads, extractor answers.
ENV SNAPFIND_HEARTBEAT_FILE=/tmp/snapfind/heartbeat
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
  CMD ["snapfind", "health", "--heartbeat"]
CMD ["snapfind", "bot"]
