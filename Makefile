# Two entry points (see README): `make preview` and `make test`. Both create .venv with the
# pinned dependencies on first use, so they work from a fresh clone with only Python 3.11.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK ?= prod
# pytest-xdist workers: one per core.
WORKERS ?= auto

.PHONY: bootstrap preview test check lint format types servers bench packs cost capacity deploy-plan catalogue install clean drill-image

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

## Offline preview of a stack (default prod) with the policy gate; exits non-zero on a violation.
preview: $(STAMP)
	$(PY) -m offline.preview --stack $(STACK) --json build/$(STACK).json

## The bootstrap program's stacks (bootstrap/Pulumi.<stack>.yaml), offline, through the packs.
bootstrap: $(STAMP)
	$(PY) -m offline.preview --project bootstrap --all-stacks --quiet

## Everything CI runs: lint, types, every test layer (the gate over every stack file in both
## modes included, as a test), on both cores.
test: lint types servers $(STAMP)
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup

## The real servers some tests start (Debian's packages), installed where missing when this runs
## as root with apt; otherwise those tests skip with the command, or fail in CI (CI=true).
## Each package is paired with the program that shows it is there, in the same order; a program
## may be a pattern (PostgreSQL's majors sit side by side), found when anything matches it.
SERVER_PACKAGES := rabbitmq-server postgresql redis-server
SERVER_PROGRAMS := /usr/lib/rabbitmq/bin/rabbitmq-server /usr/lib/postgresql/*/bin/postgres /usr/bin/redis-server
servers:
	@missing=""; set -f; set -- $(SERVER_PROGRAMS); set +f; for package in $(SERVER_PACKAGES); do \
	  found=""; for program in $$1; do [ -x "$$program" ] && found=1; done; \
	  [ -n "$$found" ] || missing="$$missing $$package"; shift; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; }; \
	else echo "not installed:$$missing (apt-get install -y$$missing); their tests skip, or fail with CI=true"; fi

## The fast layers alone: the config, the pure planners, the contract and each policy in process
## on the recorded stacks. The habit before a commit.
FAST := tests/config/test_stack_config.py tests/packs/test_contract.py tests/packs/test_policy_layers.py tests/network/test_network_plan.py \
	tests/eks/test_karpenter_plan.py $(wildcard tests/*/test_*_policy_units.py)
check: lint $(STAMP)
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup -q $(FAST)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## Rewrite the tree in the house format and apply the safe lint fixes.
format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## The program and tests, then each policy pack the way the engine loads it (its own directory
## and policies/common on the path, its __main__.py on its own).
PACK_PATH := policies/common:policies/placement:policies/security:policies/data-safety:policies/cost
types: $(STAMP)
	$(PY) -m mypy
	MYPYPATH=$(PACK_PATH) $(PY) -m mypy $(filter-out %/__main__.py,$(wildcard policies/*/*.py))
	for pack in policies/placement policies/security policies/data-safety policies/cost; do \
	  MYPYPATH=policies/common:$$pack $(PY) -m mypy --no-error-summary $$pack/__main__.py || exit 1; done

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

## The policy packs as self-contained directories under build/packs/ (policies/common copied
## into each): what `pulumi preview --policy-pack` and `pulumi policy publish` take unchanged;
## PACK_VENVS=1 also gives each its virtualenv (the CLI runs a local pack in it).
packs: $(STAMP)
	$(PY) -m offline.packs --out build/packs $(if $(PACK_VENVS),--venv)

## Monthly cost estimate of a stack, offline (prices, assumptions and figures in the README);
## `make cost STACK=prod` prints it and writes build/cost-<stack>.json. ARGS passes more flags
## (--compare dev, -c KEY=VALUE, --usage KEY=N).
cost: $(STAMP)
	$(PY) -m cost --stack $(STACK) --json build/cost-$(STACK).json $(ARGS)

## Capacity model: a week of scans through the prod scan pools (figures in the README).
capacity: $(STAMP)
	$(PY) benchmarks/capacity.py --stack $(STACK) --json build/capacity-$(STACK).json

## The zone drill's probe image, built and pushed to the stack's scanner/drill-probe repository
## for the nodes' linux/amd64 (needs docker with buildx, the AWS CLI and the Pulumi CLI logged in to the stack). TAG: a new tag each time.
drill-image:
	@[ -n "$(TAG)" ] || { echo "error: TAG: required (make drill-image STACK=$(STACK) TAG=<a new tag>)" >&2; exit 2; }
	@repo=$$(pulumi stack output drill --stack $(STACK) --json | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["probeImage"])') \
	  && aws ecr get-login-password | docker login --username AWS --password-stdin $${repo%%/*} \
	  && docker buildx build --platform linux/amd64 -f drill/Dockerfile -t $$repo:$(TAG) --push .

clean:
	rm -rf $(VENV) build .pytest_cache
