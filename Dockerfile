# memdb container image: a build stage makes a virtual environment with memdb
# and its dependencies (`pip install .`, non-editable); the runtime stage copies
# only that venv and runs it as a non-root user. See docs/container.md.
#
#   docker build -t memdb .
#   docker run --rm -p 8000:8000 --memory 512m memdb
#
# The base is a build argument: an official python:3.12-slim by default, or any
# Debian-like base without Python (Debian's python3 is then installed with apt),
# e.g. the debootstrap-made base of scripts/container-smoke:
#
#   podman build --format docker --build-arg BASE=localhost/bookworm \
#       --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t memdb .
#
# The optional `cacert` build secret is a CA bundle for pip (behind a
# TLS-intercepting proxy); it is mounted only while pip runs, never stored in a layer.
ARG BASE=python:3.12-slim

# ------------------------------------------------ python: the base plus python3
# python:3.12-slim has it already (/usr/local/bin/python3); a bare Debian base
# gets Debian's (/usr/bin/python3). Both later stages start here, so the venv
# built below runs on exactly the interpreter it was made with.
FROM ${BASE} AS python
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
        && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi

# ------------------------------------------- build: /opt/venv with memdb in it
FROM python AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
RUN if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
        && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi \
 && python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
# Build requirements and dependencies first, in their own layer: it is reused
# while pyproject.toml is unchanged.
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
 && python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); print("\n".join(p["build-system"]["requires"] + p["project"]["dependencies"]))' \
        > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY server ./server
COPY store ./store
# memdb itself (a regular, non-editable install), then pip and setuptools leave:
# the runtime needs neither.
RUN /opt/venv/bin/pip install --no-build-isolation --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y -q setuptools pip \
 && /opt/venv/bin/memdb --help >/dev/null

# ------------------------------------------------- runtime: the venv, non-root
FROM python AS runtime
RUN groupadd --gid 10001 memdb \
 && useradd --uid 10001 --gid memdb --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin memdb \
 && install -d -m 0700 -o memdb -g memdb /var/lib/memdb
# /var/lib/memdb: the data directory (MEMDB_DATA_DIR) a volume mounts over; a new
# named volume takes this owner and mode, so the non-root user can write it.
COPY --from=build /opt/venv /opt/venv
# Sample dataset, for MEMDB_SEED_FILE=/app/data/sample.json (development only).
COPY data/sample.json /app/data/sample.json
# The health check: GET /api/v1/health with the standard library only.
COPY deploy/memdb-healthcheck /usr/local/bin/memdb-healthcheck
WORKDIR /app
# Container defaults; every other MEMDB_ variable keeps its documented default.
# MEMDB_MEMORY_LIMIT_MB sits under the recommended 512 MB container limit
# (--memory 512m), so memdb refuses growth (507) before the kernel's OOM killer acts.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MEMDB_HOST=0.0.0.0 \
    MEMDB_PORT=8000 \
    MEMDB_MEMORY_LIMIT_MB=448
USER 10001:10001
EXPOSE 8000
# Uvicorn stops accepting, finishes in-flight requests, then the store drains and closes.
STOPSIGNAL SIGTERM
# deploy/memdb-healthcheck: 127.0.0.1:$MEMDB_PORT, never through a proxy, 2 s timeout.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["memdb-healthcheck"]
# Exec form: python (the memdb console script) is PID 1 and gets SIGTERM itself.
CMD ["memdb"]
