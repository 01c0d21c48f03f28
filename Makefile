# edgemigrate. `make test` runs every test; `make help` lists the targets.
GO       ?= go
BIN      := $(CURDIR)/bin
PKGS     := ./...
# Real-cluster tests fail, rather than skip, when the binaries are missing.
TEST_ENV := EDGEMIGRATE_BIN=$(BIN) EDGEMIGRATE_REQUIRE_TOOLS=1
# Packages run two at a time: each may start clusters of ~600 MiB and the machine has 2 cores.
TEST_FLAGS ?= -p 2 -timeout 40m

.PHONY: help build test unit e2e bench lint tools clean

help:
	@echo "make test    all tests: lint, unit and real-cluster e2e (builds the tools first)"
	@echo "make unit    fast tests, no clusters (go test -short)"
	@echo "make e2e     real-cluster tests only"
	@echo "make bench   benchmarks"
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

unit:
	$(GO) test -short -count=1 $(PKGS)

# Real-cluster tests are named TestE2E… (and skip under -short).
e2e: tools
	$(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 -run '^TestE2E' $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN)
