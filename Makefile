# edgemigrate. `make test` runs every test; `make help` lists the targets.
GO       ?= go
BIN      := $(CURDIR)/bin
PKGS     := ./...
# Real-cluster tests fail, rather than skip, when the binaries are missing.
TEST_ENV := EDGEMIGRATE_BIN=$(BIN) EDGEMIGRATE_REQUIRE_TOOLS=1
# Packages run two at a time: each may start clusters of ~600 MiB and the machine has 2 cores.
TEST_FLAGS ?= -p 2 -timeout 40m

.PHONY: help build test unit e2e bench bench-scheduler bench-ledger bench-webhook fuzz fabric-test lint tools clean

help:
	@echo "make test    all tests: lint, unit and real-cluster e2e (builds the tools first)"
	@echo "make unit    fast tests, no clusters (go test -short)"
	@echo "make e2e     real-cluster tests only"
	@echo "make bench   benchmarks"
	@echo "make bench-scheduler  real kube-scheduler on 1,000 Jetson nodes, 3,000 pods: without and with the extender (ratio)"
	@echo "make bench-ledger  embedded ledger: propose->decide latency and transactions/s"
	@echo "make bench-webhook pod creation through the real API server: no webhook, a do-nothing one, ours (ratios)"
	@echo "make fuzz    every fuzz target for FUZZTIME (default 30s) each"
	@echo "make fabric-test   the ledger suite and benchmark on a real local Fabric network (FABRIC_BIN)"
	@echo "make lint    gofmt and go vet"
	@echo "make tools   build the pinned Kubernetes, etcd, kwok and helm binaries into bin/"
	@echo "make build   build every package"
	@echo "make clean   remove bin/"

build:
	$(GO) build $(PKGS)

tools:
	@bash hack/build-tools.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

test: lint tools
	$(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 $(PKGS)
	@[ -n "$$FABRIC_BIN" ] || echo "SKIP: Fabric leg of the ledger suite (ledger/fabric): FABRIC_BIN is not set; see hack/fabric/README.md"

unit:
	$(GO) test -short -count=1 $(PKGS)

# Real-cluster tests are named TestE2E… (and skip under -short).
e2e: tools
	$(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 -run '^TestE2E' $(PKGS)

# -short: benchmarks that need clusters have targets of their own.
bench:
	$(GO) test -short -run '^$$' -bench . -benchmem $(PKGS)

bench-ledger:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./ledger/embedded/

bench-scheduler: tools
	$(TEST_ENV) $(GO) test -count=1 -run '^$$' -bench SchedulerThroughput -benchtime 1x -timeout 60m ./extender/schedbench/

bench-webhook: tools
	$(TEST_ENV) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkE2EPodCreate$$' -benchtime 1x ./webhook/

fuzz:
	@bash hack/fuzz.sh

fabric-test:
	@[ -n "$$FABRIC_BIN" ] || { echo "FABRIC_BIN must name Fabric's bin directory (peer, orderer, configtxgen, cryptogen, osnadmin)"; exit 1; }
	$(GO) test -count=1 -v ./ledger/fabric/
	$(GO) test -run '^$$' -bench SubmitToCommit -benchtime 100x ./ledger/fabric/

clean:
	rm -rf $(BIN)
