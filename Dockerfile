# replywatch as a container image; docker-compose.yml builds it (`docker compose up`).
# The config is mounted at /etc/replywatch/replywatch.toml and every secret comes from the
# environment (env:NAME references), so the image holds no credentials.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The weekly summary's PDF (WeasyPrint) needs Pango; its Persian text needs fonts with
# Persian glyphs. psycopg[binary] brings its own libpq.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       fonts-noto-core fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Only what the package is built from (pyproject.toml names README.md as its readme). A
# regular, non-editable install: the source tree is deleted afterwards.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY connectors ./connectors
COPY alerts ./alerts
COPY dashboards ./dashboards
RUN pip install ".[postgres]" \
    && cd / && rm -rf /src

# Unprivileged user. Its home is the working directory, where relative paths in the config
# (an SQLite file, file: secrets) would land; the compose stack uses PostgreSQL instead.
RUN groupadd --system --gid 10001 replywatch \
    && useradd --system --uid 10001 --gid replywatch --create-home \
       --home-dir /var/lib/replywatch --shell /usr/sbin/nologin replywatch
USER replywatch:replywatch
WORKDIR /var/lib/replywatch
# Also for one-off commands: `docker compose exec replywatch replywatch stats`.
ENV REPLYWATCH_CONFIG=/etc/replywatch/replywatch.toml

# /metrics, /healthz and /hooks/meta. The health check assumes this port: keep it in step
# with --listen below if you change it.
EXPOSE 9874
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9874/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["replywatch"]
CMD ["--config", "/etc/replywatch/replywatch.toml", "run", "--listen", "0.0.0.0:9874"]
