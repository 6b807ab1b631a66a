# mexc-pump-scanner image: the Cython core compiled in a build stage, run from a slim one.
# There is no Docker engine on the development machines: this file is checked statically by
# tests/test_deploy.py (pinned base, non-root user, HEALTHCHECK, no secrets baked in), never built there.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# gcc and the C library headers only here: the runtime image carries no compiler.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# requirements-train.txt adds scikit-learn and scipy for the self-training image (docker-compose.yml: trainer).
ARG REQUIREMENTS=requirements.txt
COPY requirements.txt requirements-train.txt ./
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r ${REQUIREMENTS}
COPY setup.py pyproject.toml ./
COPY core ./core
COPY shards ./shards
RUN /venv/bin/python setup.py --quiet build_ext --inplace && rm -rf build core/*.c shards/*.c

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 scanner && mkdir -p /data && chown scanner:scanner /data
WORKDIR /app
COPY --from=build /venv /venv
COPY --from=build /app/core ./core
COPY --from=build /app/shards ./shards
COPY common ./common
COPY venues ./venues
COPY store ./store
COPY trading ./trading
COPY detectors ./detectors
COPY supervisor ./supervisor
COPY bot ./bot
COPY sim ./sim
COPY config.yaml config.demo.yaml model.json model.flash.json ./
# Secrets (TG_TOKEN, MEXC_KEY, MEXC_SECRET, ALLOWED_IDS) come from the environment at run time only.
# Metrics listen on all interfaces inside the container; compose publishes them on the host's loopback.
ENV PATH=/venv/bin:$PATH \
    SCANNER_DATA_DIR=/data \
    METRICS_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER scanner
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "supervisor", "--config", "config.yaml"]
