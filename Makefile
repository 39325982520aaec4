# InitOS build entry points. Everything is plain `go`; this file only names
# the common invocations.
GO        ?= go
BINARIES  := $(patsubst cmd/%/,%,$(sort $(dir $(wildcard cmd/*/main.go))))
OUT       ?= out
LDFLAGS   := -s -w -buildid=
GOFLAGS_STATIC := -trimpath -ldflags='$(LDFLAGS)'

.PHONY: all build test fuzz bench cross demo demo-quick clean vet size

all: build

build:
	@mkdir -p $(OUT)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_STATIC) -o $(OUT)/ ./cmd/...

vet:
	$(GO) vet ./...

# The whole suite: pure logic, root + loop device tests on the host, the
# oracle (C tool) differential tests, the VM tests under qemu (TCG), and
# every fuzz target for FUZZTIME each.
FUZZTIME ?= 10s
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m ./...
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./bench/

# Static builds of every binary for linux/amd64 and linux/arm64.
cross:
	@for arch in amd64 arm64; do \
		mkdir -p $(OUT)/linux-$$arch; \
		echo "building linux/$$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build $(GOFLAGS_STATIC) -o $(OUT)/linux-$$arch/ ./cmd/... || exit 1; \
	done

# The production initrd's compressed size and its biggest parts (docs/boot.md).
size:
	./scripts/size.sh $(OUT)

# The main job of the README (docs/demo.md): build debianhost and the USB
# installer, install a VM from it under Secure Boot with a TPM, boot it,
# upgrade it (A/B, and a broken upgrade that falls back), refuse tampering.
demo: build
	go run ./internal/demo/full --initos $(OUT)/initos

# The short demo (under a minute): keys, a verity image, a signed UKI with a
# demo /init, booted under Secure Boot; a tampered UKI refused.
demo-quick: build
	./scripts/demo.sh $(OUT)

clean:
	rm -rf $(OUT)
