# The verbs people use. `make run` runs the main job; `make test` runs the tests (both set up what they need).
VENV ?= .venv
PY := $(VENV)/bin/python
SINQ := $(VENV)/bin/sinq
DOCKER_DIR ?= /tmp/sinq-docker

.PHONY: run test lint bench bench-docker selftest sandbox-image system-deps docker-up docker-down clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# bubblewrap gives the local sandbox its filesystem view; installed when we are root and it is missing.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  else echo "note: install bubblewrap for the sandbox's filesystem view (tests needing it will skip)"; fi; }

run: system-deps $(VENV)/.installed
	$(SINQ) run

test: system-deps $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: system-deps $(VENV)/.installed
	$(SINQ) sandbox bench
	$(SINQ) db bench

bench-docker: $(VENV)/.installed
	$(SINQ) sandbox bench --backend docker

selftest: system-deps $(VENV)/.installed
	$(SINQ) sandbox selftest

# Offline build from Debian packages; `sinq sandbox build-image` (no flag) uses the Dockerfile and a registry.
sandbox-image: $(VENV)/.installed
	$(SINQ) sandbox build-image --offline

# A private Docker Engine for the Docker backend: eval "$$(make -s docker-up)" then use --backend docker.
docker-up:
	@scripts/dockerd.sh start $(DOCKER_DIR)

docker-down:
	@scripts/dockerd.sh stop $(DOCKER_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
