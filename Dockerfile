# Grandmaster: one process serving REST, WebSockets and streams; history in /data.

# The built-in engine's search compiled by mypyc (tools/build_native.py; profile-guided, as
# the stage's compiler is GCC), in a stage of its own so that the image carries no compiler
# (.dockerignore keeps the host's build out); it analyses with GM_ENGINE=builtin (the image's
# default analysis engine is Stockfish). The same base image as below: the same Python ABI.
# mypy reads the chess package's types to compile, hence its install here.
FROM python:3.11-slim-bookworm AS native
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "mypy>=2.4,<3" "librt>=0.17,<0.18" "setuptools>=68" \
        "chess>=1.11,<1.12"
WORKDIR /build
COPY pyproject.toml ./
COPY tools/build_native.py ./tools/
COPY engine ./engine
RUN python tools/build_native.py

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
# The compiled modules and the stamp of the sources they came from (package data of
# engine.search, installed with it).
COPY --from=native /build/engine/search/ ./engine/search/
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
