# tenantflow developer Makefile. `make` (or `make help`) lists the targets.
#
# Pinned dev tools (tools/) are installed on first use into a cache folder OUTSIDE the
# repo, so `sam build` never copies a virtualenv or node_modules and fresh clones (CI)
# reuse it:
#   $(TF_CACHE)/uv                   uv (pinned), which installs the venv below ~20x faster than pip
#   $(TF_CACHE)/venv                 moto_server, cfn-lint (+serverless rules), sam
#   $(TF_CACHE)/checkov-venv         checkov (own venv: it pins boto3 exactly, see tools/checkov-requirements.txt)
#   $(TF_CACHE)/node/node_modules    aws-local-stepfunctions, asl-validator
#   $(TF_CACHE)/bin                  stripe-mock, staticcheck
# Each install has a stamp file named after a hash of its manifest (and of the toolchain
# that builds it), so it re-runs only when that manifest changes, never on mtimes.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

TF_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tenantflow
# Go code (tests, cmd/devstack) finds the tools through this variable.
export TENANTFLOW_TOOLS := $(TF_CACHE)

PYTHON ?= python3
GO ?= go
NPM ?= npm

# Architecture of the Lambda bootstraps; a local Lambda runner overrides it with the host's.
LAMBDA_GOARCH ?= arm64

STRIPE_MOCK_VERSION := v0.180.0
UV_VERSION := 0.13.9
STATICCHECK_VERSION := v0.8.2

VENV := $(TF_CACHE)/venv
UV_DIR := $(TF_CACHE)/uv
UV := $(UV_DIR)/bin/uv
NODE_DIR := $(TF_CACHE)/node
GOBIN_DIR := $(TF_CACHE)/bin
SAM := $(VENV)/bin/sam
CFN_LINT := $(VENV)/bin/cfn-lint
CHECKOV_VENV := $(TF_CACHE)/checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov
ASL_VALIDATOR := $(NODE_DIR)/node_modules/.bin/asl-validator
STATICCHECK := $(GOBIN_DIR)/staticcheck
SAM_HOME := $(TF_CACHE)/sam-home
SAM_CONFIG := $(SAM_HOME)/metadata.json

hash = $(shell { $(1); } 2>/dev/null | cksum | tr -c '0-9\n' '-' | tr -d '\n')
PY_HASH := $(call hash,cat tools/requirements.txt tools/constraints.txt; $(PYTHON) --version; echo $(UV_VERSION))
CHECKOV_HASH := $(call hash,cat tools/checkov-requirements.txt tools/checkov-constraints.txt; $(PYTHON) --version; echo $(UV_VERSION))
NODE_HASH := $(call hash,cat tools/package.json tools/package-lock.json)
GO_VERSION_HASH := $(call hash,$(GO) env GOVERSION GOOS GOARCH)

PY_STAMP := $(VENV)/.stamp-$(PY_HASH)
CHECKOV_STAMP := $(CHECKOV_VENV)/.stamp-$(CHECKOV_HASH)
UV_STAMP := $(UV_DIR)/.stamp-$(UV_VERSION)-$(call hash,$(PYTHON) --version)
NODE_STAMP := $(NODE_DIR)/.stamp-$(NODE_HASH)
STRIPE_MOCK_STAMP := $(GOBIN_DIR)/.stamp-stripe-mock-$(STRIPE_MOCK_VERSION)-$(GO_VERSION_HASH)
STATICCHECK_STAMP := $(GOBIN_DIR)/.stamp-staticcheck-$(STATICCHECK_VERSION)-$(GO_VERSION_HASH)
# Debian's chromium for the console's browser tests (see $(CHROMIUM_STAMP) below). The
# stamp's name follows where chromium is (nothing, before the install), so the check
# runs again on a machine where it went missing, and costs nothing once it is there.
CHROMIUM ?= chromium
CHROMIUM_DIR := $(TF_CACHE)/chromium
CHROMIUM_STAMP := $(CHROMIUM_DIR)/.stamp-$(call hash,command -v $(CHROMIUM))
TOOL_STAMPS := $(PY_STAMP) $(CHECKOV_STAMP) $(SAM_CONFIG) $(NODE_STAMP) $(STRIPE_MOCK_STAMP) $(STATICCHECK_STAMP)
RUNTIME_STAMPS := $(PY_STAMP) $(NODE_STAMP) $(STRIPE_MOCK_STAMP)

# sam build runs offline: telemetry off, its config dir in the cache (see $(SAM_CONFIG)),
# a dummy region and dummy credentials (sam build needs neither; this keeps a developer's
# AWS profile out of it).
SAM_ENV := env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN \
	SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR=$(SAM_HOME) AWS_REGION=us-east-1 \
	AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

.PHONY: help tools runtime-tools tools-lock lint lint-go lint-template lint-asl lint-checkov sam-build test test-browser dev invoke sam-local bench soak fuzz-api clean chromium console-shots

help: ## list the targets
	@echo "usage: make <target>   (tool cache: $(TF_CACHE))"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z%_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The installs are independent, so they run in parallel (output kept per install).
tools: ## install the pinned dev tools into $(TF_CACHE) (no-op when up to date)
	@$(MAKE) -s -j4 --output-sync=target $(TOOL_STAMPS)

runtime-tools: ## only the emulators make dev needs (moto, Step Functions, stripe-mock)
	@$(MAKE) -s -j3 --output-sync=target $(RUNTIME_STAMPS)

# uv resolves nothing here: requirements.txt pins the direct tools and constraints.txt
# every transitive one, so uv and pip install the same set; uv just does it in seconds
# (measured on a cold cache: pip 110 s, uv 3 s). UV_NATIVE_TLS trusts the system CA store
# as pip does. Its download cache stays in the tool cache.
$(UV_STAMP):
	@echo "==> uv $(UV_VERSION) -> $(UV_DIR)"
	rm -rf $(UV_DIR)
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/pip install --quiet --disable-pip-version-check --no-input uv==$(UV_VERSION)
	touch $@

$(PY_STAMP): $(UV_STAMP)
	@echo "==> python tools -> $(VENV)"
	rm -rf $(VENV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)
	UV_CACHE_DIR=$(TF_CACHE)/uv-cache UV_NATIVE_TLS=1 $(UV) pip install --quiet --python $(VENV)/bin/python -r tools/requirements.txt
	touch $@

$(CHECKOV_STAMP): $(UV_STAMP)
	@echo "==> checkov -> $(CHECKOV_VENV)"
	rm -rf $(CHECKOV_VENV)
	$(UV) venv --quiet --python $(PYTHON) $(CHECKOV_VENV)
	UV_CACHE_DIR=$(TF_CACHE)/uv-cache UV_NATIVE_TLS=1 $(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python -r tools/checkov-requirements.txt
	touch $@

# sam's global config: telemetry off, and a last version check far in the future so that
# it never asks PyPI whether a newer sam exists (the version is pinned on purpose).
$(SAM_CONFIG):
	mkdir -p $(SAM_HOME)
	echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' > $@

$(NODE_STAMP):
	@echo "==> node tools -> $(NODE_DIR)/node_modules"
	rm -f $(NODE_DIR)/.stamp-*
	mkdir -p $(NODE_DIR)
	cp tools/package.json tools/package-lock.json $(NODE_DIR)/
	cd $(NODE_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

$(STRIPE_MOCK_STAMP):
	@echo "==> stripe-mock $(STRIPE_MOCK_VERSION) -> $(GOBIN_DIR)"
	rm -f $(GOBIN_DIR)/.stamp-stripe-mock-*
	GOBIN=$(GOBIN_DIR) $(GO) install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)
	touch $@

$(STATICCHECK_STAMP):
	@echo "==> staticcheck $(STATICCHECK_VERSION) -> $(GOBIN_DIR)"
	rm -f $(GOBIN_DIR)/.stamp-staticcheck-*
	GOBIN=$(GOBIN_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	touch $@

# Installed on first use with apt-get, as tools/sam-local-docker.sh installs docker.io:
# as root directly, otherwise through sudo when it needs no password (-n: never a
# prompt in CI), noninteractive, without recommends; anywhere else it stops with what
# to do instead. chromedp finds it on PATH (or TENANTFLOW_CHROMIUM names another).
chromium: $(CHROMIUM_STAMP) ## install Debian's chromium for the browser tests (no-op when installed)

$(CHROMIUM_STAMP):
	@if ! command -v $(CHROMIUM) >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "chromium: $(CHROMIUM) is not installed and this user can neither apt-get (not root) nor sudo without a password." >&2; \
	    echo "chromium: install Debian's chromium package (or set TENANTFLOW_CHROMIUM to a Chrome/Chromium binary) and run make again." >&2; exit 1; fi; \
	  if ! command -v apt-get >/dev/null || [ ! -f /etc/debian_version ]; then \
	    echo "chromium: $(CHROMIUM) is not installed and this is not Debian (no apt-get): install Chromium yourself (or set TENANTFLOW_CHROMIUM) and run make again." >&2; exit 1; fi; \
	  echo "==> chromium (Debian package, apt-get)"; \
	  $$sudo apt-get update -qq; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi
	@rm -f $(CHROMIUM_DIR)/.stamp-*
	@mkdir -p $(CHROMIUM_DIR)
	@$(CHROMIUM) --version 2>/dev/null
	@touch $(CHROMIUM_DIR)/.stamp-$$(command -v $(CHROMIUM) | cksum | tr -c '0-9\n' '-' | tr -d '\n')

tools-lock: ## re-resolve tools/constraints.txt and tools/package-lock.json after a pin change
	rm -rf $(TF_CACHE)/lock-venv
	$(PYTHON) -m venv $(TF_CACHE)/lock-venv
	grep -v '^-c' tools/requirements.txt > $(TF_CACHE)/lock-requirements.txt
	$(TF_CACHE)/lock-venv/bin/pip install --quiet --disable-pip-version-check -r $(TF_CACHE)/lock-requirements.txt
	$(TF_CACHE)/lock-venv/bin/pip check
	{ echo '# Generated by `make tools-lock`: pip freeze of a clean Python 3.11 venv after installing requirements.txt. Do not edit by hand.'; \
	  $(TF_CACHE)/lock-venv/bin/pip freeze --all --exclude pip; } > tools/constraints.txt
	rm -rf $(TF_CACHE)/lock-venv $(TF_CACHE)/lock-requirements.txt
	$(PYTHON) -m venv $(TF_CACHE)/lock-venv
	grep -v '^-c' tools/checkov-requirements.txt > $(TF_CACHE)/lock-requirements.txt
	$(TF_CACHE)/lock-venv/bin/pip install --quiet --disable-pip-version-check -r $(TF_CACHE)/lock-requirements.txt
	$(TF_CACHE)/lock-venv/bin/pip check
	{ echo '# Generated by `make tools-lock`: pip freeze of a clean Python 3.11 venv after installing checkov-requirements.txt. Do not edit by hand.'; \
	  $(TF_CACHE)/lock-venv/bin/pip freeze --all --exclude pip; } > tools/checkov-constraints.txt
	rm -rf $(TF_CACHE)/lock-venv $(TF_CACHE)/lock-requirements.txt
	cd tools && $(NPM) install --package-lock-only --no-audit --no-fund --loglevel=error

lint: tools ## all checks below; runs every one and fails if any failed
	@$(MAKE) -k lint-go lint-template lint-asl lint-checkov

lint-go: $(STATICCHECK_STAMP) ## gofmt -l (fails on any file listed), go vet ./..., staticcheck ./...
	@echo "==> gofmt -l"
	@out="$$(find . -type d -name '.?*' -prune -o -type f -name '*.go' -print0 | xargs -0 -r gofmt -l)"; \
	  if [ -n "$$out" ]; then echo "gofmt would reformat these files (run gofmt -w):"; echo "$$out"; exit 1; fi
	@echo "==> go vet ./... (and the samlocal-tagged fixture tests)"
	@$(GO) vet ./...
	@$(GO) vet -tags samlocal ./shared/httpapi/
	@$(GO) vet -tags browser ./cmd/devstack/ ./internal/localstack/browser/
	@echo "==> staticcheck ./..."
	@$(STATICCHECK) ./...
	@$(STATICCHECK) -tags browser ./cmd/devstack/ ./internal/localstack/browser/

lint-template: $(PY_STAMP) ## cfn-lint template.yaml with the serverless rules
	@echo "==> cfn-lint template.yaml -a cfn_lint_serverless.rules"
	@$(CFN_LINT) template.yaml -a cfn_lint_serverless.rules

# --skip-download: no call to the Prisma Cloud API (offline, and nothing leaves the
# machine). Every finding is fixed or skipped in the resource's Metadata (checkov: skip,
# with the reason), so any new failure fails the lint.
lint-checkov: $(CHECKOV_STAMP) ## checkov on template.yaml (0 unsuppressed failures)
	@echo "==> checkov -f template.yaml"
	@$(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download

lint-asl: $(NODE_STAMP) ## asl-validator on every statemachines/*.asl.json (none is fine)
	@shopt -s nullglob; files=(statemachines/*.asl.json); \
	  echo "==> asl-validator: $${#files[@]} state machine(s)"; \
	  if [ $${#files[@]} -gt 0 ]; then $(ASL_VALIDATOR) "$${files[@]/#/--json-path=}"; fi

sam-build: $(PY_STAMP) $(SAM_CONFIG) ## sam build (in source, Go via build-<LogicalId>), then check every bootstrap
	@echo "==> sam build --build-in-source (LAMBDA_GOARCH=$(LAMBDA_GOARCH))"
	@$(SAM_ENV) $(SAM) build --build-in-source --parallel --template-file template.yaml --build-dir .aws-sam/build
	@$(VENV)/bin/python tools/check_build.py --template template.yaml --build-dir .aws-sam/build --goarch $(LAMBDA_GOARCH)

# Called by `sam build` (Metadata: BuildMethod: makefile) with ARTIFACTS_DIR set, and by
# the local Lambda runner. LogicalId FooBarFunction builds ./functions/foo-bar (strip a
# trailing "Function", CamelCase -> kebab-case; HTTPApiFunction -> http-api).
function_dir = functions/$(shell printf '%s' '$(1)' | sed -E 's/Function$$//; s/([A-Z]+)([A-Z][a-z])/\1-\2/g; s/([a-z0-9])([A-Z])/\1-\2/g' | tr 'A-Z' 'a-z')

build-%: ## (for sam) build ./functions/foo-bar into ARTIFACTS_DIR/bootstrap for FooBarFunction
	@test -n "$(ARTIFACTS_DIR)" || { echo "build-$*: ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	@test -d "$(call function_dir,$*)" || { echo "build-$*: no directory $(call function_dir,$*) for LogicalId $*" >&2; exit 1; }
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_GOARCH) $(GO) build -tags lambda.norpc -trimpath -buildvcs=false \
	  -ldflags="-s -w" -o "$(ARTIFACTS_DIR)/bootstrap" ./$(call function_dir,$*)

# lint and sam-build are independent: they run side by side (each one's output kept
# together), which saves about 20 s of the warm run on two cores.
test: tools ## tools + lint + sam-build, then go test ./...
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint sam-build
	@echo "==> go test ./..."
	$(GO) test -timeout 12m ./...

# The console in a real browser: the harness's own tests and cmd/devstack's
# TestConsoleInBrowser (build tag browser, so go test ./... leaves them to this target).
# Chromium is installed on first use; .ci/run runs this after make test.
test-browser: runtime-tools $(CHROMIUM_STAMP) ## the console's tests in headless Chromium (installs Debian's chromium on first use)
	@echo "==> go test -tags browser (the console in headless Chromium)"
	$(GO) test -tags browser -count=1 -timeout 10m ./internal/localstack/browser/
	$(GO) test -tags browser -count=1 -timeout 10m -run '^TestConsoleInBrowser$$' ./cmd/devstack/

# The console's browser scenarios against one devstack, saving one PNG per view (and
# the dark scheme, and a 422 in the action dialog) into .console-shots/.
console-shots: runtime-tools $(CHROMIUM_STAMP) ## one PNG per console view into .console-shots/ (from the browser tests)
	@rm -rf .console-shots && mkdir -p .console-shots
	@echo "==> go test -tags browser -run TestConsoleInBrowser ./cmd/devstack/ (log: .console-shots/test.log)"
	@status=0; TENANTFLOW_CONSOLE_SHOTS=$(CURDIR)/.console-shots $(GO) test -tags browser -count=1 -timeout 10m -v \
	  -run '^TestConsoleInBrowser$$' ./cmd/devstack/ >.console-shots/test.log 2>&1 || status=$$?; \
	  grep -E -- '--- (PASS|FAIL)|view [a-z0-9-]+:|suite:' .console-shots/test.log || true; \
	  echo "==> screenshots:"; ls -1 .console-shots/*.png 2>/dev/null || echo "  none"; exit $$status

# The local stack needs only the emulators (moto in the venv, the Step Functions server in
# node_modules, stripe-mock), not the linters. CGO off and -trimpath match the flags the
# bootstraps are built with, so devstack itself and the functions share one warm Go build
# cache (measured: a cold `make dev` build went from 128 s to 88 s).
dev invoke bench soak: export CGO_ENABLED := 0
dev invoke bench soak: export GOFLAGS := -trimpath

dev: runtime-tools ## run the local stack: go run ./cmd/devstack $(ARGS) (ARGS="--port 0", ...)
	@$(GO) run ./cmd/devstack $(ARGS)

invoke: runtime-tools ## invoke one function locally: make invoke FN=ApiFunction EVENT=events/api/x.json
	@$(GO) run ./cmd/devstack invoke $(FN) $(EVENT)

# Every fixture of events/ through the real `sam local invoke` against the local
# emulators, judged by the Go fixture tests (README: "Running every fixture through the
# real sam local invoke"). tools/sam-local-docker.sh finds a Docker daemon or starts one
# (installing Debian's docker.io if need be) and builds the stand-in base image; a daemon
# it started is stopped when the run ends. ARGS="-lanes 4" plays the API fixtures on
# more stacks at once.
sam-local: runtime-tools $(SAM_CONFIG) ## every fixture of events/ through the real sam local invoke: table of expected vs got
	@start=$$(date +%s); \
	  host=$$(tools/sam-local-docker.sh start); \
	  trap 'tools/sam-local-docker.sh stop' EXIT; \
	  image=$$(DOCKER_HOST=$$host tools/sam-local-docker.sh image); \
	  DOCKER_HOST=$$host SAM_LOCAL_IMAGE=$$image $(GO) run ./cmd/samlocal -since $$start $(ARGS)

# One table of ratios against baselines measured in the same run (docs/benchmarks.md),
# also written to .bench/latest.json; under 15 minutes on 2 cores.
bench: runtime-tools ## run the benchmarks on the local stack: go run ./cmd/bench $(ARGS) (ARGS="-only cold-start")
	@$(GO) run ./cmd/bench $(ARGS)

# The lifecycle's invariants over many seeded sequences (docs/invariants.md): each
# failing sequence shrunk and printed with its seed, then the line
# "N sequences, M steps, K violations". ARGS="-count 200 -seed 42", "-count 0
# -duration 30m", "-focus race"; `go run ./cmd/soak -h` lists the flags.
# Built, then run (not go run), so that its last line is its own.
soak: runtime-tools ## check the lifecycle invariants over many sequences: go run ./cmd/soak $(ARGS)
	@$(GO) build -o .soak/soak ./cmd/soak
	@.soak/soak $(ARGS)

# Generated requests for every operation of openapi.yaml (internal/localstack/apifuzz),
# longer than the bounded run in `make test`: PER_OP requests per operation (default
# 400), SEED (default the test's fixed one), BUDGET (default 10m).
fuzz-api: runtime-tools ## property-based API test, long run: make fuzz-api PER_OP=400 SEED=7 BUDGET=10m
	TENANTFLOW_APIFUZZ_PER_OP=$(or $(PER_OP),400) TENANTFLOW_APIFUZZ_BUDGET=$(or $(BUDGET),10m) \
	  $(if $(SEED),TENANTFLOW_APIFUZZ_SEED=$(SEED)) \
	  $(GO) test -count=1 -timeout 30m -run TestGeneratedRequests -v ./internal/localstack/apifuzz/

clean: ## remove .aws-sam, .devstack, .soak and .console-shots (the tool cache stays)
	rm -rf .aws-sam .devstack .soak .console-shots
