# Spare — common tasks. `make demo` runs the main job; `make test` runs the tests (CI runs it through .ci/run).

GO ?= go
BIN := bin/spare

.PHONY: build install demo test race fuzz bench bench-smoke vet fmt-check clean faults

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/spare # the commit, for spare version

# spare on the PATH: go install puts it in $(go env GOBIN), or $(go env GOPATH)/bin when GOBIN is unset.
install:
	$(GO) install -buildvcs=auto ./cmd/spare
	@bin=$$($(GO) env GOBIN); [ -n "$$bin" ] || bin=$$($(GO) env GOPATH)/bin; echo "installed $$bin/spare"; \
	case ":$$PATH:" in *":$$bin:"*) ;; *) echo "$$bin is not on your PATH: export PATH=\"$$bin:\$$PATH\"";; esac

demo: build
	bash scripts/demo.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The whole suite: formatting, vet, every test (real in-process CometBFT nodes included), the race detector on
# the packages with concurrency, one iteration of every benchmark (so their setup cannot rot unnoticed), and a
# short run of every fuzz target.
test: fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -timeout 15m ./ledger/... ./client/... ./node/... ./provider/... ./runtime/... ./reqsig/... ./explorer/... ./audit/... ./proof/... ./match/... ./tenant/...
	$(MAKE) bench-smoke
	$(MAKE) fuzz

# Every fault scenario on real processes (package faults, and the process-level fault tests beside the commands
# they exercise), about 12 minutes on 2 cores; the results table goes to faults-results.md for RELIABILITY.md.
# make test runs the short profile: one validator of four killed and restarted.
faults:
	SPARE_FAULTS=full SPARE_FAULTS_REPORT=$(CURDIR)/faults-results.md $(GO) test -count=1 -v -timeout 30m ./faults/
	SPARE_FAULTS=full $(GO) test -count=1 -v -timeout 20m ./cmd/spare/ -run 'TestKill9DuringLoadRecovers|TestProviderKill9MidLease|TestProviderDownFiveEpochs|TestProviderRestartAcrossEpochBoundary|TestWorkloadsPastTheirLimits|TestJournalFlipRefusedThenRebuilt|TestTenantKilledThenRecovered'
	$(GO) test -count=1 -v ./ledger/store/ -run 'TestJournalFlipRefused|TestTornJournalTailAccepted|TestStorageDamageRefused'

bench-smoke:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 10m ./...

# Fuzz budgets are counts of executions, about 10 s of each target on 2 cores (FUZZ=k runs k times as many).
# A count rather than a duration: Go 1.26's fuzz coordinator can report a spurious "context deadline exceeded"
# when a -fuzztime duration ends while a worker is busy (golang/go#75804, fixed in Go 1.27).
FUZZ ?= 1
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTx$$' -fuzztime $$((600000 * $(FUZZ)))x ./ledger/tx
	$(GO) test -run '^$$' -fuzz '^FuzzCheckTx$$' -fuzztime $$((100000 * $(FUZZ)))x ./ledger
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeState$$' -fuzztime $$((50000 * $(FUZZ)))x ./ledger
	$(GO) test -run '^$$' -fuzz '^FuzzFinalizeBlock$$' -fuzztime $$((1000 * $(FUZZ)))x ./ledger
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyHeaders$$' -fuzztime $$((200000 * $(FUZZ)))x ./reqsig
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $$((50000 * $(FUZZ)))x ./jobspec
	$(GO) test -run '^$$' -fuzz '^FuzzRoutes$$' -fuzztime $$((20000 * $(FUZZ)))x ./explorer/web
	$(GO) test -run '^$$' -fuzz '^FuzzLineChart$$' -fuzztime $$((20000 * $(FUZZ)))x ./explorer/svg
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeOpening$$' -fuzztime $$((200000 * $(FUZZ)))x ./proof
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTranscript$$' -fuzztime $$((200000 * $(FUZZ)))x ./proof
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeObject$$' -fuzztime $$((50000 * $(FUZZ)))x ./vault/layout
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyProof$$' -fuzztime $$((50000 * $(FUZZ)))x ./vault
	$(GO) test -run '^$$' -fuzz '^FuzzReadSlice$$' -fuzztime $$((50000 * $(FUZZ)))x ./vault
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyOpening$$' -fuzztime $$((200000 * $(FUZZ)))x ./proof
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTranscripts$$' -fuzztime $$((20000 * $(FUZZ)))x ./audit
	$(GO) test -run '^$$' -fuzz '^FuzzString$$' -fuzztime $$((20000 * $(FUZZ)))x ./termsafe
	$(GO) test -run '^$$' -fuzz '^FuzzSplitLog$$' -fuzztime $$((200000 * $(FUZZ)))x ./runtime
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeLogLines$$' -fuzztime $$((20000 * $(FUZZ)))x ./tenant

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x ./ledger
	$(GO) run ./bench/ledger

clean:
	rm -rf bin
