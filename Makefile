# Two entry points: `make run` (install, then serve on 127.0.0.1:8000 with data in ./data)
# and `make test` (install, then lint, type-check and run the whole test suite);
# `make test-full` runs the suite with GM_TEST_FULL=1 (far more seeded trials, slow).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CODE := app engine workers
ARGS ?=

.PHONY: install native run test test-full lint checks system-deps screenshots bench-moves bench-pageload clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The built-in engine's search compiled by mypyc (tools/build_native.py), many times faster
# (profile-guided with GCC); rebuilt whenever the digest of its sources (the one
# engine/search/__init__.py checks before loading it) changed. Without a C compiler, or when
# the build fails, the engine runs from its sources, as it would anyway; a build that could
# not be profile-guided says so.
native: install
	@if ! command -v cc >/dev/null 2>&1; then \
	  echo "no C compiler (cc): the built-in engine runs from its sources" >&2; \
	elif $(BIN)/python tools/build_native.py --if-changed >build-native.log 2>&1; then \
	  grep -h "no profile-guided build" build-native.log >&2 || true; \
	  rm -f build-native.log; \
	else \
	  $(BIN)/python tools/build_native.py --clean; \
	  echo "engine/search not compiled (see build-native.log): the built-in engine runs from its sources" >&2; \
	fi

run: install native
	$(BIN)/python -m app $(ARGS)

lint: install
	$(BIN)/ruff check $(CODE) tests bench tools
	$(BIN)/ruff format --check $(CODE) tests bench tools
	$(BIN)/mypy --strict $(CODE)

# The tests drive a real UCI engine, a real browser and a real Redis, and run the image's
# init: install Debian's stockfish, chromium, chromium-driver, redis-server and tini when
# missing (as root, as on CI); otherwise say what to install.
system-deps:
	@if ! command -v stockfish >/dev/null 2>&1 && [ ! -x /usr/games/stockfish ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stockfish; \
	  else \
	    echo "the tests need stockfish: sudo apt-get install stockfish" >&2; exit 1; \
	  fi; \
	fi
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "the browser tests need chromium: sudo apt-get install chromium chromium-driver" >&2; exit 1; \
	  fi; \
	fi
	@if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else \
	    echo "the bus and scale-out tests need redis-server: sudo apt-get install redis-server" >&2; exit 1; \
	  fi; \
	fi
	@if ! command -v cc >/dev/null 2>&1 || [ ! -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev python3-dev; \
	  else \
	    echo "the compiled engine's test needs a C compiler and Python's headers: sudo apt-get install gcc python3-dev" >&2; exit 1; \
	  fi; \
	fi
	@if [ ! -x /usr/bin/tini ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tini; \
	  else \
	    echo "the container test needs tini (the image's init): sudo apt-get install tini" >&2; exit 1; \
	  fi; \
	fi

# The browser tests write the README's screenshots (home, game, game review, 16-board
# tournament) to docs/.
screenshots: install system-deps
	GM_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/site

# Two test processes (pytest-xdist), each file's tests kept together in one of them and in
# their order; `$(BIN)/python -m pytest` runs the suite in a single process.
PYTEST_PROCESSES ?= -n 2 --dist loadfile

# The lint and the native build side by side: each keeps about one core busy (the build is
# mostly one C file), and the build needs system-deps' C compiler first. The build prints a
# line only when it falls back, so their output does not mix.
checks: system-deps
	@$(MAKE) --no-print-directory -j2 lint native

test: checks
	$(BIN)/python -m pytest $(PYTEST_PROCESSES)

test-full: checks
	GM_TEST_FULL=1 $(BIN)/python -m pytest $(PYTEST_PROCESSES) --timeout 1800

bench-moves: install
	$(BIN)/python bench/moves.py

bench-pageload: install system-deps
	$(BIN)/python bench/pageload.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache build-native.log
	rm -f engine/search/*.so engine/search/native.sha256
