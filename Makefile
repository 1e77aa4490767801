# scratchgen — see README.md. `make demo` renders the example; `make test` runs every check CI runs.
GO        ?= go
BIN       ?= bin/scratchgen
SPEC      ?= examples/demo/cluster.yaml
E2E_CACHE ?= $(CURDIR)/e2e/.cache
K8S_VERSIONS ?= v1.34.4 v1.35.4 v1.36.3

.PHONY: all build test golden demo fuzz bench e2e e2e-all e2e-bins clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/scratchgen

## test: unit tests, golden cases and validators (what CI runs besides the boot test)
test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## golden: rewrite the expected golden files from the current output (that run fails on purpose), then re-check
golden:
	-$(GO) test -count=1 ./golden -update
	$(GO) test -count=1 ./golden

## demo: render the example cluster into bundles/
demo: build
	@mkdir -p $(dir $(SPEC))
	@test -f $(SPEC) || $(BIN) init > $(SPEC)
	$(BIN) render -f $(SPEC) -o bundles

## fuzz: fuzz the spec parser and validation (a few minutes; not in CI)
FUZZTIME ?= 3m
fuzz:
	$(GO) test ./generator/model -run '^$$' -fuzz FuzzResolve -fuzztime $(FUZZTIME)

## bench: the scale table: 1000-node cold, no-op, one node added (time, bytes, memory), diff and verify, medians of 5 (SCRATCHGEN_SCALE_NODES=1000,2000,... for more sizes), then the hot paths (go benchmarks); the table comes first so that its cold renders follow no benchmark's deletions (see settle in generator/render/scale_test.go)
bench:
	SCRATCHGEN_SCALE=1 $(GO) test -run '^TestScale$$' -v -count=1 -timeout 60m ./generator/render
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./generator/render ./generator/pki ./generator/writer

clean:
	rm -rf bin bundles/*/ e2e/.cache

## e2e: boot a rendered control plane on real etcd and Kubernetes binaries (as root; the first run builds them into e2e/.cache)
E2E_VERSION ?= v1.36.3
E2E_TIMEOUT ?= 20m
e2e:
	SCRATCHGEN_E2E=1 SCRATCHGEN_E2E_VERSION=$(E2E_VERSION) SCRATCHGEN_E2E_CACHE=$(E2E_CACHE) $(GO) test -count=1 -v -timeout $(E2E_TIMEOUT) -skip '^(TestHA|TestMachines|TestMachinesIgnitionBinaries|TestMachinesIPFamilies|TestRotate|TestDay2)$$' ./e2e

## e2e-all: the boot test for the tested patch of every supported minor, one go test run each
e2e-all:
	@set -e; for v in $(K8S_VERSIONS); do echo "=== make e2e E2E_VERSION=$$v"; $(MAKE) --no-print-directory e2e E2E_VERSION=$$v; done

## e2e-ha: the multi-host boot test: three control-plane+etcd nodes behind the test's load balancer, then one node fails
.PHONY: e2e-ha
e2e-ha:
	SCRATCHGEN_E2E=1 SCRATCHGEN_E2E_VERSION=$(E2E_VERSION) SCRATCHGEN_E2E_CACHE=$(E2E_CACHE) $(GO) test -count=1 -v -timeout $(E2E_TIMEOUT) -run '^TestHA$$' ./e2e

## e2e-day2: on the HA harness, etcd members replaced, grown 3->5 and shrunk back, and an upgrade 1.35->1.36, each by following `scratchgen plan` (as root; builds the binaries of both releases)
.PHONY: e2e-day2
e2e-day2:
	SCRATCHGEN_E2E=1 SCRATCHGEN_E2E_DAY2=1 SCRATCHGEN_E2E_VERSION=$(E2E_VERSION) SCRATCHGEN_E2E_CACHE=$(E2E_CACHE) $(GO) test -count=1 -v -timeout $(E2E_MACHINES_TIMEOUT) -run '^TestDay2$$' ./e2e

## e2e-rotate: rotate the cluster CA and the service-account key of a running cluster of booted machines, stage by stage, measuring API availability (as root; as e2e-machines)
.PHONY: e2e-rotate
e2e-rotate:
	SCRATCHGEN_E2E=1 SCRATCHGEN_E2E_ROTATE=1 SCRATCHGEN_E2E_VERSION=$(E2E_VERSION) SCRATCHGEN_E2E_CACHE=$(E2E_CACHE) $(GO) test -count=1 -v -timeout $(E2E_MACHINES_TIMEOUT) -run '^TestRotate$$' ./e2e

## e2e-bins: build (or reuse) the real binaries of E2E_VERSION and its etcd into E2E_CACHE
e2e-bins:
	$(GO) run ./e2e/tools/buildbins -k8s $(E2E_VERSION) -cache $(E2E_CACHE)

## e2e-machine-image: build (or reuse) the machine image and the Ignition binary into E2E_CACHE (as root; what e2e-machines builds first when cold)
.PHONY: e2e-machine-image
e2e-machine-image:
	$(GO) run ./e2e/tools/machineimage -cache $(E2E_CACHE)

## e2e-machines: the bundle delivered to booted systemd-nspawn machines by rsync, Ignition and cloud-init; the cluster comes up under systemd (as root; Debian packages systemd-container debootstrap rsync libblkid-dev; the first run builds the machine image and Ignition into e2e/.cache)
E2E_MACHINES_TIMEOUT ?= 60m
.PHONY: e2e-machines
e2e-machines:
	SCRATCHGEN_E2E=1 SCRATCHGEN_E2E_MACHINES=1 SCRATCHGEN_E2E_VERSION=$(E2E_VERSION) SCRATCHGEN_E2E_CACHE=$(E2E_CACHE) $(GO) test -p 1 -count=1 -v -timeout $(E2E_MACHINES_TIMEOUT) -run '^TestMachines(IgnitionBinaries|IPFamilies)?$$' ./e2e/internal/machine ./e2e

