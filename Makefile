GO      ?= go
BIN     := bin/gatehouse
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run run-standalone test bench lint fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/gatehouse

# A whole domain on this machine: admin node, node manager, two gateways,
# demo upstream (docs: README quickstart).
run: build
	./$(BIN) dev

# A standalone gateway on examples/gateway.yaml in front of the demo upstream.
run-standalone: build
	./scripts/run-standalone.sh

# Unit tests with the race detector; the end-to-end tests start the real
# binary and run without it.
test: lint
	$(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v /e2e)
	$(GO) test -count=1 -timeout 15m ./e2e/...

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/... ./deploy/...
	./bench/proxy.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Short runs of every fuzz target (go test -fuzz takes one target at a time).
fuzz:
	$(GO) test ./deploy -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30s
	$(GO) test ./deploy -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime 30s
	$(GO) test ./policy/catalog -run '^$$' -fuzz '^FuzzChecker$$' -fuzztime 30s
	$(GO) test ./gateway/router -run '^$$' -fuzz '^FuzzLookup$$' -fuzztime 30s
	$(GO) test ./gateway/router -run '^$$' -fuzz '^FuzzBuild$$' -fuzztime 30s
	$(GO) test ./adminnode/api -run '^$$' -fuzz '^FuzzDraftPut$$' -fuzztime 30s

clean:
	rm -rf bin
