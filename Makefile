# vmprov: `make lab` shows it working, `make test` proves it.
GO        ?= go
GOFLAGS   ?= -mod=mod
export GOFLAGS
BIN       := bin/vmprov
LABDIR    ?= $(CURDIR)/.lab
FUZZTIME  ?= 20s
LABNETNS  ?= vmprov-lab

.PHONY: all build test lint bench fuzz lab lab-up lab-fleet lab-down deps clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vmprov

deps:
	bash test/install-deps.sh

# The whole suite, against real BIND, libvirtd, QEMU and iPXE where they are
# installed (`make deps`); tests that need what is missing say so and skip.
test: lint
	$(GO) test -count=1 -timeout 40m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

fuzz:
	$(GO) test -list 'Fuzz.*' ./... | awk '/^Fuzz/ {fn[n++]=$$1} /^ok/ {for (i = 0; i < n; i++) print $$2, fn[i]; n=0}' | \
	while read pkg fn; do $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

# The seed 000 workflow for real, left running: an isolated lab (network
# namespace vmprov-lab, bridges br135 and br136 (IPv6-only), BIND, libvirtd,
# radvd), `vmprov serve` with a generated config, then `vmprov create` of
# demo1 (VLAN 135, 192.0.2.10) and demo6 (IPv6-only, SLAAC) with the real
# CLI; prints each boot timeline, the kernel command line, the DNS records
# and `vmprov list`. Fails when a boot misses an expected request. An earlier
# lab in LABDIR is torn down first. `make lab-down` removes everything.
lab: deps build
	$(GO) run ./test/lab/cmd/vmprov-lab demo --dir $(LABDIR) --netns $(LABNETNS) --vmprov $(BIN)

# The same lab with `vmprov serve` but no VMs, for manual work.
lab-up: deps build
	$(GO) run ./test/lab/cmd/vmprov-lab up --dir $(LABDIR) --netns $(LABNETNS) --vmprov $(BIN) -v

# lab-up with a fleet of three hypervisors next to it: hv1 (qemu+ssh), hv2
# and hv3 (qemu+tcp; hv3 without br136), each a libvirtd in a namespace of its
# own, and LABDIR/vmprov/vmprov-fleet.yaml pointing vmprov at them.
lab-fleet: deps build
	$(GO) run ./test/lab/cmd/vmprov-lab up --dir $(LABDIR) --netns $(LABNETNS) --vmprov $(BIN) --fleet

lab-down:
	$(GO) run ./test/lab/cmd/vmprov-lab down --dir $(LABDIR)

clean:
	rm -rf bin
