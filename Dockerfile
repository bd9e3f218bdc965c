# Grandmaster: one process serving REST, WebSockets and streams; history in /data.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian's Stockfish analyses positions for spectators (one engine process per core);
# redis-server is the bus of GM_EDGES when no GM_BUS is given; tini is PID 1 (see ENTRYPOINT).
RUN apt-get update \
    && apt-get install -y --no-install-recommends stockfish redis-server tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/grandmaster
COPY pyproject.toml README.md ./
COPY app ./app
COPY engine ./engine
COPY workers ./workers
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data grandmaster \
    && mkdir -p /data \
    && chown grandmaster /data

USER grandmaster
ENV GM_HOST=0.0.0.0 \
    GM_PORT=8000 \
    GM_DATA_DIR=/data \
    GM_ENGINE=uci:/usr/games/stockfish
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# The working directory holds the sources; run from / so `app` resolves to the installed package.
WORKDIR /data
# An init as PID 1: it reaps orphans (the engine process of an analysis worker that was killed
# is re-parented to PID 1, and Python there would leave it a zombie) and passes SIGTERM on to the
# server. -s: it also reaps as a subreaper when `docker run --init` puts another init first.
ENTRYPOINT ["/usr/bin/tini", "-s", "--"]
CMD ["python", "-m", "app"]
