# Multi-stage build: compile the Cython core in a full image, run from a slim one.
# (No Docker engine exists on the development machines: this file is checked statically only.)
FROM python:3.12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt ./
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt
COPY setup.py pyproject.toml ./
COPY core ./core
RUN /venv/bin/python setup.py build_ext --inplace

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 scanner
WORKDIR /app
COPY --from=build /venv /venv
COPY --from=build /app/core ./core
COPY common ./common
COPY shards ./shards
COPY supervisor ./supervisor
COPY bot ./bot
COPY sim ./sim
COPY config.yaml config.demo.yaml model.json ./
ENV PATH=/venv/bin:$PATH SCANNER_DATA_DIR=/data PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown scanner /data
USER scanner
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "supervisor", "--config", "config.yaml"]
