# syntax=docker/dockerfile:1
# Clipper image: the API by default; `clipper worker` for workers (see compose.yaml).

# --- builder: a virtualenv with Clipper and its dependencies, no build tools in the final image
FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/clipper
WORKDIR /src
# Dependencies first, so editing the code does not reinstall them.
# The versions CI tested: requirements/runtime.lock (`make lock` refreshes it).
COPY pyproject.toml README.md ./
COPY requirements/runtime.lock ./requirements/runtime.lock
RUN mkdir clipper workers api && touch clipper/__init__.py workers/__init__.py api/__init__.py \
    && /opt/clipper/bin/pip install -c requirements/runtime.lock . \
    && /opt/clipper/bin/pip uninstall -y clipper
COPY clipper ./clipper
COPY workers ./workers
COPY api ./api
RUN /opt/clipper/bin/pip install --no-deps -c requirements/runtime.lock .

# --- runtime: FFmpeg from Debian through the same script CI and `make run` use
FROM python:3.11-slim-bookworm
COPY scripts/install-system-deps.sh /tmp/install-system-deps.sh
RUN bash /tmp/install-system-deps.sh --image \
    && rm -rf /var/lib/apt/lists/* /tmp/install-system-deps.sh
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/clipper clipper \
    && install -d -o clipper -g clipper /var/lib/clipper /var/lib/clipper/work
COPY --from=builder /opt/clipper /opt/clipper
ENV PATH=/opt/clipper/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLIPPER_STATE_DIR=/var/lib/clipper \
    CLIPPER_WORK_DIR=/var/lib/clipper/work \
    CLIPPER_LOCAL_STORAGE_DIR=/var/lib/clipper/storage
USER clipper
WORKDIR /home/clipper
EXPOSE 8000
# Python's urllib: the slim image has no curl, and the check must not need one.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["clipper", "api", "--host", "0.0.0.0", "--port", "8000"]
