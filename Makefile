# instant — see README.md. Everything the targets need is built into ./bin
# and cached under ./.cache (both ignored by git), so a second run is fast.
# Set GOMODCACHE and GOCACHE in the environment to share Go's caches with
# other checkouts instead.

export GOMODCACHE ?= $(CURDIR)/.cache/mod
export GOCACHE ?= $(CURDIR)/.cache/go-build
export GOFLAGS ?= -buildvcs=false

BIN := $(CURDIR)/bin
CENTRIFUGO_VERSION := v6.9.1
# Centrifugo's release builds stamp their version here (see its
# .goreleaser.yml); without it the binary says v0.0.0 and warns at every
# start that it is a development build.
CENTRIFUGO_LDFLAGS := -s -w -X github.com/centrifugal/centrifugo/v6/internal/build.Version=$(CENTRIFUGO_VERSION:v%=%)
NATSCLI_VERSION := v0.5.0
STATICCHECK_VERSION := v0.8.2
NATS_SERVER_VERSION = $(shell go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TEST_FLAGS ?= -race -timeout 20m
BENCH_COUNT ?= 5
BENCH_FLAGS ?=

.PHONY: all build run test bench chaos lint tools clean FORCE

all: build

## build: compile bin/instant
build:
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/instant ./cmd/instant

# bin/centrifugo is rebuilt whenever it does not report the pinned version
# (missing, an unstamped development build, or another version).
CENTRIFUGO_OK = $(shell $(BIN)/centrifugo version 2>/dev/null | grep -qF 'Centrifugo $(CENTRIFUGO_VERSION) ' && echo yes)

$(BIN)/centrifugo: $(if $(CENTRIFUGO_OK),,FORCE)
	@echo "installing Centrifugo $(CENTRIFUGO_VERSION) into bin/ (first time only, several minutes: see README)"
	GOBIN=$(BIN) go install -ldflags '$(CENTRIFUGO_LDFLAGS)' github.com/centrifugal/centrifugo/v6@$(CENTRIFUGO_VERSION)

$(BIN)/nats:
	@echo "installing the nats CLI $(NATSCLI_VERSION) into bin/"
	GOBIN=$(BIN) go install github.com/nats-io/natscli/nats@$(NATSCLI_VERSION)

$(BIN)/nats-server:
	@echo "installing nats-server $(NATS_SERVER_VERSION) into bin/ (the version go.mod pins)"
	GOBIN=$(BIN) go install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

TOOLS := $(BIN)/centrifugo $(BIN)/nats $(BIN)/nats-server $(BIN)/staticcheck

# The tools build in parallel (-j, each one's output kept together): most
# of a first build is linking, one core each.
JOBS ?= 4

## tools: install what the tests need into bin/
tools:
	@$(MAKE) --no-print-directory -j$(JOBS) -O $(TOOLS)

.PHONY: packages web

# Debian packages the tests use, each as package:the file it provides.
TEST_PACKAGES := chromium:/usr/bin/chromium redis-server:/usr/bin/redis-server \
	docker-compose:/usr/bin/docker-compose systemd:/usr/bin/systemd-analyze

## packages: install the Debian packages the tests use (headless browser,
## validators of deploy/) when missing; installing needs root
packages:
	@missing=""; for p in $(TEST_PACKAGES); do [ -x "$${p#*:}" ] || missing="$$missing $${p%%:*}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "missing Debian packages:$$missing; install them as root (apt-get install$$missing) or some tests fail or skip"; fi

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund

## web: reinstall the npm packages from the lockfile and rebuild web/dist (commit it)
web:
	cd web && npm ci --no-audit --no-fund && node build.mjs

## run: build what is missing and start the local stack
run:
	@$(MAKE) --no-print-directory -j$(JOBS) -O build $(BIN)/centrifugo $(BIN)/nats
	$(BIN)/instant dev

## test: install the tools, lint, then run every test with the race detector
test: tools packages lint web/node_modules/.package-lock.json
	node --test web/test/
	go test $(TEST_FLAGS) ./...
	cd producer && go test $(TEST_FLAGS) ./...

## bench: print throughput and latency figures measured on this machine
# (BENCH_COUNT interleaved rounds of every benchmark in ./bench, then
# medians and ratios; BENCH_FLAGS go to the benchmark binary, e.g.
# BENCH_FLAGS='-msgs 20000 -batch-sizes 100,500'; redis-server, from
# `make packages`, runs Centrifugo's Redis engine)
bench: build tools packages
	mkdir -p $(CURDIR)/.cache
	go test -c -o $(CURDIR)/.cache/bench.test ./bench
	go build -o $(CURDIR)/.cache/bench-report ./bench/report
	@for i in $$(seq $(BENCH_COUNT)); do \
		echo "# round $$i of $(BENCH_COUNT)"; \
		$(CURDIR)/.cache/bench.test -test.run '^$$' -test.bench . -test.benchtime 1x -test.timeout 30m $(BENCH_FLAGS) \
			|| echo "FAIL: round $$i"; \
	done | $(CURDIR)/.cache/bench-report

## chaos: the production shape on loopback (3 NATS nodes, 2 Centrifugo
# nodes on Redis behind load balancers, 3 bridge workers, auth,
# centrifuge-go subscribers and a headless Chromium page) under every
# fault of internal/chaos with 100,000 envelopes; fails on any lost,
# reordered or doubled envelope, writes artifacts/chaos/report.md and
# relayed.png and prints the report. `make test` runs a short version
# (TestChaos, a few faults, about 2 minutes; skipped with -short).
chaos: tools packages
	@rm -f artifacts/chaos/report.md artifacts/chaos/relayed.png
	@INSTANT_CHAOS=long go test -count=1 -run '^TestChaos$$' -timeout 30m ./internal/chaos; status=$$?; \
		if [ -f artifacts/chaos/report.md ]; then cat artifacts/chaos/report.md; fi; exit $$status

## lint: gofmt, go vet and staticcheck
lint: $(BIN)/staticcheck
	@out=$$(find . -name '*.go' -not -path './.cache/*' | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(BIN)/staticcheck ./...
	cd producer && go vet ./... && $(BIN)/staticcheck ./...

clean:
	rm -rf $(BIN)
	chmod -R u+w .cache 2>/dev/null; rm -rf .cache

FORCE:
