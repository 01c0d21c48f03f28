# edgemigrate. `make test` runs every test; `make help` lists the targets.
GO       ?= go
BIN      := $(CURDIR)/bin
PKGS     := ./...
# The project's OCI images (`make images`), tagged with the chart's appVersion.
IMAGES      := $(BIN)/images
APP_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/edgemigrate/Chart.yaml)
# Real-cluster tests fail, rather than skip, when the binaries are missing. Real-node tests
# skip without root or containerd unless EDGEMIGRATE_REQUIRE_REAL_NODES=1 (.ci/run sets it).
TEST_ENV := EDGEMIGRATE_BIN=$(BIN) EDGEMIGRATE_REQUIRE_TOOLS=1 EDGEMIGRATE_IMAGES=$(IMAGES)
# Packages run two at a time: each may start clusters of ~600 MiB and the machine has 2 cores.
TEST_FLAGS ?= -p 2 -timeout 40m

.PHONY: help build test unit e2e chaos bench bench-scheduler bench-ledger bench-migration bench-webhook fuzz fabric-test lint tools images images-push scheduler clean

help:
	@echo "make test    all tests: lint, unit and real-cluster e2e (builds the tools first)"
	@echo "make unit    fast tests, no clusters (go test -short)"
	@echo "make e2e     real-cluster tests only"
	@echo "make chaos   three clusters on real nodes, 50 migrations while random seeded SIGKILLs hit every edgemigrate process, the ledger and a kube-apiserver: prints the seed, migrations, kills, services lost/duplicated and failed car requests (CHAOS_SEED=n replays a run; make test runs a short one, seed 17)"
	@echo "make bench   benchmarks"
	@echo "make bench-scheduler  real kube-scheduler on 1,000 Jetson nodes, 3,000 pods: without and with the extender (ratio)"
	@echo "make bench-ledger  embedded ledger: propose->decide latency and transactions/s"
	@echo "make bench-migration  50 migrations on kwok clusters, then 20 on real nodes with a car's requests every 20 ms: trigger->ready/removed p50/p99 vs create->Ready, request latency, failed requests"
	@echo "make generate     regenerate deepcopy, the CRD, clientset, listers and informers (hack/codegen)"
	@echo "make manifests     render manifests/install/edgemigrate.yaml from the chart"
	@echo "make chart-lint    helm lint of the chart"
	@echo "make bench-webhook pod creation through the real API server: no webhook, a do-nothing one, ours (ratios)"
	@echo "make fuzz    every fuzz target for FUZZTIME (default 30s) each"
	@echo "make fabric-test   the ledger suite and benchmark on a real local Fabric network (FABRIC_BIN)"
	@echo "make lint    gofmt and go vet"
	@echo "make demo    watch both migration scenarios on local clusters, dashboard at http://127.0.0.1:8080 (DURATION=3m to stop by itself)"
	@echo "make tools   build the pinned Kubernetes, etcd, kwok and helm binaries into bin/ (as root: install containerd, runc, CNI plugins)"
	@echo "make images  build the OCI images (edgemigrate, edgemigrate-scheduler, kube-scheduler, pause, testservice, classifier, profiler) into bin/images and print their digests; trains the classifier first (cached)"
	@echo "make images-push IMAGE_REPO=registry/path  push them"
	@echo "make scheduler  build bin/edgemigrate-scheduler: kube-scheduler with the Jetson plugin (scheduler/)"
	@echo "make build   build every package"
	@echo "make clean   remove bin/"

build:
	$(GO) build $(PKGS)

tools:
	@bash hack/build-tools.sh

# Without a container engine: static binaries on a base the project assembles (hack/images).
images: tools
	@bash hack/build-tools.sh static-kube-scheduler
	@BIN=$(BIN) bash hack/build-scheduler.sh static
	$(GO) run ./hack/images build --out $(IMAGES) --version $(APP_VERSION) --kube-scheduler $(BIN)/static/kube-scheduler \
		--edgemigrate-scheduler $(BIN)/static/edgemigrate-scheduler

images-push: images
	@[ -n "$(IMAGE_REPO)" ] || { echo "usage: IMAGE_REPO=registry.example.com/team make images-push"; exit 1; }
	$(GO) run ./hack/images push --layout $(IMAGES) --repo $(IMAGE_REPO)

# scheduler/ is a module of its own (it requires k8s.io/kubernetes); its tests run with the
# product's in unit, e2e and test.
SCHED_MOD := scheduler
scheduler:
	@bash hack/build-scheduler.sh

# The demo runs until Ctrl-C, or for DURATION (e.g. 3m) with the scenarios always finished.
.PHONY: demo
# As root the demo runs real containers, from the images `make images` builds.
demo: tools
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory images; fi
	@$(GO) build -o $(BIN)/ ./cmd/edgemigrate ./cmd/edgemigrate-demo
	EDGEMIGRATE_BIN=$(BIN) $(BIN)/edgemigrate-demo $(if $(DURATION),--duration $(DURATION)) $(if $(CLUSTERS),--clusters $(CLUSTERS))

lint:
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	cd $(SCHED_MOD) && $(GO) vet ./...

test: lint tools images scheduler
	$(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 $(PKGS)
	cd $(SCHED_MOD) && $(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 ./...
	@[ -n "$$FABRIC_BIN" ] || echo "SKIP: Fabric legs (ledger/fabric suite, test/migration TestE2EMobilityFabric): FABRIC_BIN is not set; see hack/fabric/README.md"
	@command -v chromium >/dev/null || [ -n "$$EDGEMIGRATE_CHROMIUM" ] || echo "SKIP: real-browser tests of the dashboard and demo: chromium not found (apt-get install chromium)"

unit:
	$(GO) test -short -count=1 $(PKGS)
	cd $(SCHED_MOD) && $(GO) test -short -count=1 ./...

# Real-cluster tests are named TestE2E… (and skip under -short).
e2e: tools images scheduler
	$(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 -run '^TestE2E' $(PKGS)
	cd $(SCHED_MOD) && $(TEST_ENV) $(GO) test $(TEST_FLAGS) -count=1 -run '^TestE2E' ./...

# The chaos run of test/chaos, longer than the one `make test` runs (10 migrations, seed
# 17): CHAOS_MIGRATIONS migrations and a random seed, printed; CHAOS_SEED=<n> replays one.
CHAOS_MIGRATIONS ?= 50
CHAOS_SEED       ?= random
chaos: tools images
	$(TEST_ENV) CHAOS_MIGRATIONS=$(CHAOS_MIGRATIONS) CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -v -timeout 60m -run '^TestE2EChaos$$' ./test/chaos/

# -short: benchmarks that need clusters have targets of their own.
bench:
	$(GO) test -short -run '^$$' -bench . -benchmem $(PKGS)

bench-ledger:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./ledger/embedded/

bench-scheduler: tools scheduler
	$(TEST_ENV) $(GO) test -count=1 -run '^$$' -bench SchedulerThroughput -benchtime 1x -timeout 60m ./extender/schedbench/

# The kwok fleet for scale (50 migrations of API objects), then real nodes (20 migrations of
# a real classifier, with a car's requests every 20 ms; skipped, saying so, without root).
bench-migration: tools images
	$(TEST_ENV) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkE2EMigration$$' -benchtime 50x -timeout 30m ./test/migration/
	$(TEST_ENV) $(GO) test -count=1 -run '^$$' -bench '^BenchmarkE2ERealMigration$$' -benchtime 20x -timeout 30m ./test/realmigration/

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

# Plain YAML for `kubectl apply` users, rendered from the chart's defaults (self-signed webhook
# TLS); test/chart fails when it drifts from the chart. The chart carries a copy of the CRD.
# The chart is also the one source of manifests/scheduler-config.yaml and
# manifests/scheduler-plugin-config.yaml (the ConfigMap's data in extender and plugin mode)
# and manifests/webhook.yaml (templates/webhook.yaml), which programs and tests embed.
.PHONY: manifests chart-lint
INSTALL_YAML   := manifests/install/edgemigrate.yaml
SCHEDULER_YAML := manifests/scheduler-config.yaml
PLUGIN_YAML    := manifests/scheduler-plugin-config.yaml
# The ConfigMap's scheduler-config.yaml, unindented.
SCHEDULER_DATA := sed -n '/^  scheduler-config.yaml: |$$/,$$p' | tail -n +2 | sed 's/^    //'
WEBHOOK_YAML   := manifests/webhook.yaml
HELM_TEMPLATE  := $(BIN)/helm template edgemigrate charts/edgemigrate --namespace edgemigrate-system
manifests:
	@if [ -f manifests/crds/edgemigrate.io_migrations.yaml ]; then cp manifests/crds/edgemigrate.io_migrations.yaml charts/edgemigrate/crds/; fi
	@{ echo "# edgemigrate: the Helm chart charts/edgemigrate rendered with its default values (self-signed"; \
	  echo "# webhook TLS, cluster id edge-1), for kubectl users. Generated by \`make manifests\`:"; \
	  echo "#   helm template edgemigrate charts/edgemigrate --namespace edgemigrate-system --include-crds --skip-tests"; \
	  echo "# Do not edit: change the chart's values instead (see charts/edgemigrate/README.md)."; \
	  echo "apiVersion: v1"; echo "kind: Namespace"; echo "metadata:"; echo "  name: edgemigrate-system"; \
	  $(HELM_TEMPLATE) --include-crds --skip-tests; \
	} > $(INSTALL_YAML).tmp && mv $(INSTALL_YAML).tmp $(INSTALL_YAML)
	@{ echo "# Generated by \`make manifests\` from charts/edgemigrate/templates/scheduler-config.yaml with the"; \
	  echo "# chart's defaults and scheduler.mode=extender (release edgemigrate in edgemigrate-system). Do not edit: change the chart."; \
	  $(HELM_TEMPLATE) --set scheduler.mode=extender --show-only templates/scheduler-config.yaml | $(SCHEDULER_DATA); \
	} > $(SCHEDULER_YAML).tmp && mv $(SCHEDULER_YAML).tmp $(SCHEDULER_YAML)
	@{ echo "# Generated by \`make manifests\` from charts/edgemigrate/templates/scheduler-config.yaml with the"; \
	  echo "# chart's defaults, scheduler.mode=plugin (release edgemigrate in edgemigrate-system). Do not edit: change the chart."; \
	  $(HELM_TEMPLATE) --show-only templates/scheduler-config.yaml | $(SCHEDULER_DATA); \
	} > $(PLUGIN_YAML).tmp && mv $(PLUGIN_YAML).tmp $(PLUGIN_YAML)
	@{ echo "# Generated by \`make manifests\` from charts/edgemigrate/templates/webhook.yaml with the chart's"; \
	  echo "# defaults (release edgemigrate in edgemigrate-system, self-signed TLS: the webhook writes its CA"; \
	  echo "# into the caBundle). Do not edit: change the chart (webhook.tls for cert-manager or your own Secret)."; \
	  echo "apiVersion: v1"; echo "kind: Namespace"; echo "metadata:"; echo "  name: edgemigrate-system"; \
	  $(HELM_TEMPLATE) --show-only templates/webhook.yaml; \
	} > $(WEBHOOK_YAML).tmp && mv $(WEBHOOK_YAML).tmp $(WEBHOOK_YAML)

chart-lint:
	$(BIN)/helm lint --strict charts/edgemigrate
	$(BIN)/helm lint --strict charts/edgemigrate --set webhook.tls.mode=certManager --set serviceMonitor.enabled=true --set networkPolicy.enabled=true
	$(BIN)/helm lint --strict charts/edgemigrate --set scheduler.mode=extender --set serviceMonitor.enabled=true --set networkPolicy.enabled=true
	$(BIN)/helm lint --strict charts/edgemigrate --set ledger.backend=fabric --set ledger.fabric.peer=peer0.org1:7051 --set ledger.fabric.mspId=Org1MSP

# Deepcopy, the Migration CRD (also into the chart's crds/) and the typed clientset, listers
# and informers, from the markers in api/v1alpha1; api/v1alpha1's drift test fails when they
# are stale.
.PHONY: generate
generate:
	@CODEGEN_BIN=$(BIN)/codegen bash hack/codegen/generate.sh
