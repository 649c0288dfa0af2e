GO      ?= go
BIN     := bin/gatehouse
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build package run run-standalone test bench lint fuzz fuzz-short clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/gatehouse

# The Debian package, bin/gatehouse_<version>_<arch>.deb (scripts/package.sh):
# a static binary, the gatehouse user, /var/lib/gatehouse and the units of
# the admin node and the node manager.
package:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/deb/gatehouse ./cmd/gatehouse
	BIN=bin/deb/gatehouse VERSION=$(VERSION) OUT=bin ./scripts/package.sh

# A whole domain on this machine: admin node, node manager, two gateways,
# demo upstream (docs: README quickstart).
run: build
	./$(BIN) dev

# A standalone gateway on examples/gateway.yaml in front of the demo upstream.
run-standalone: build
	./scripts/run-standalone.sh

# Unit tests with the race detector, a few seconds of every fuzz target;
# the end-to-end tests start the real binary and run without it.
test: lint
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e)
	$(MAKE) --no-print-directory fuzz-short
	$(GO) test -count=1 -timeout 15m ./e2e/...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/... ./deploy/...
	./bench/proxy.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every fuzz target in the tree, FUZZTIME each; scripts/fuzz.sh finds them.
FUZZTIME ?= 30s
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Every fuzz target for a few seconds, as part of test.
fuzz-short:
	GO=$(GO) FUZZTIME=3s ./scripts/fuzz.sh

clean:
	rm -rf bin
