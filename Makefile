# Two entry points (see README): `make preview` and `make test`. Both create .venv with the
# pinned dependencies on first use, so they work from a fresh clone with only Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK ?= prod

.PHONY: preview test bench capacity deploy-plan catalogue install clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

## Offline preview of a stack (default prod) with the policy gate; exits non-zero on a violation.
preview: $(STAMP)
	$(PY) -m offline.preview --stack $(STACK) --json build/$(STACK).json

## Unit tests, then the offline gate over every stack file in both modes.
test: $(STAMP)
	$(PY) -m pytest
	$(PY) -m offline.preview --all-stacks --quiet

## Preview and import timings (figures in the README).
bench: $(STAMP)
	$(PY) benchmarks/preview_bench.py

## Modelled critical path of a first `pulumi up` (figure in the README); exits 1 over the budget.
deploy-plan: $(STAMP)
	$(PY) -m offline.deploy_plan --stack $(STACK) --max-minutes 32 --json build/deploy-plan-$(STACK).json

## Rebuild catalogue/aws.json from the live AWS APIs (needs credentials; SOURCE=moto rebuilds it offline).
SOURCE ?= aws
catalogue: $(STAMP)
	$(PY) -m catalogue.refresh --source $(SOURCE) --out catalogue/aws.json

## Capacity model: a week of scans through the prod scan pools (figures in the README).
capacity: $(STAMP)
	$(PY) benchmarks/capacity.py --stack $(STACK) --json build/capacity-$(STACK).json

clean:
	rm -rf $(VENV) build .pytest_cache
