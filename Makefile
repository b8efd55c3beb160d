# Two entry points, each doing its own set-up on a fresh machine (see README.md).
#   make course   create .venv if absent, install, execute every notebook (PROFILE=smoke) into runs/
#   make test     create .venv if absent, install, run pytest (unit tests + notebooks)
#   make exercises  student copies of the notebooks (solution cells stubbed) into exercises/
#   make gpu      on a GPU machine: every notebook in the gpu profile (~1 h on one H200), then nbval;
#                 summary in runs/gpu/summary.md (scripts/run_notebooks.sh, as the weekly GPU workflow)
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= smoke
# CPU machines of the course and CI pin torch/torchvision here; on your own GPU machine use
# `make CONSTRAINTS= course` (or plain `pip install -e ".[all]"`) to keep the torch you have.
CONSTRAINTS ?= constraints-ci.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: course test install exercises gpu cpu-results clean-runs

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

course: $(STAMP)
	$(PY) -m inpaint_utils.nbrun run --profile $(PROFILE) --out runs/$(PROFILE) notebooks/*.ipynb

test: $(STAMP)
	$(PY) -m pytest

exercises: $(STAMP)
	$(PY) -m inpaint_utils.exercises make --out exercises notebooks/*.ipynb

gpu:
	scripts/run_notebooks.sh --profile gpu

# the cpu profile's runs (each model <= 20 min on a 2-core CPU), scored into results/, README table regenerated
cpu-results: $(STAMP)
	PYTHON=$(PY) scripts/cpu_runs.sh all

clean-runs:
	rm -rf runs/
