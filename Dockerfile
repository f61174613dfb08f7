# grokgate on one server: `docker compose up -d` (compose.yaml adds Redis), or alone with a volume on
# /data (SQLite and media there). docs/self-host.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY infra ./infra
COPY functions ./functions
# The gateway and its runtime dependencies only (no test tools); a user without a shell or home of
# its own; /data is the one writable place.
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin grokgate \
    && mkdir -p /data \
    && chown grokgate:grokgate /data

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]

# Listens on every interface inside the container: GROKGATE_API_KEYS is then required (the gateway
# refuses to start open on a non-loopback address).
ENV GROKGATE_HOST=0.0.0.0 \
    GROKGATE_PORT=8000 \
    GROKGATE_STORE=sqlite:////data/grokgate.db \
    GROKGATE_MEDIA=/data/media
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/health' % os.environ.get('GROKGATE_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

CMD ["grokgate", "serve"]
