# vmprov: `make lab` shows it working, `make test` proves it.
GO        ?= go
GOFLAGS   ?= -mod=mod
export GOFLAGS
BIN       := bin/vmprov
LABDIR    ?= $(CURDIR)/.lab

.PHONY: all build test lint bench fuzz lab lab-up lab-down deps clean

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
	$(GO) test -list 'Fuzz.*' ./... | awk '/^ok/ {pkg=$$2} /^Fuzz/ {print pkg, $$1}' | \
	while read pkg fn; do $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime 20s $$pkg || exit 1; done

# The seed 000 workflow for real: an isolated lab (network namespace, bridge
# br135, BIND, libvirtd, radvd), `vmprov serve` on the bridge, `vmprov create`
# of a VM that netboots with Debian's iPXE ROM; prints the boot timeline, then
# tears everything down.
lab: deps build
	$(GO) test -count=1 -v -run 'TestNetbootIPv4' ./test/e2e/

# A lab that stays up (namespace, BIND, libvirtd, radvd) for manual work.
lab-up: deps build
	$(GO) run ./test/lab/cmd/vmprov-lab up --dir $(LABDIR) -v

lab-down:
	$(GO) run ./test/lab/cmd/vmprov-lab down --dir $(LABDIR)

clean:
	rm -rf bin
