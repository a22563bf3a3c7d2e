# ws-governor — every target is documented with "## "; `make` alone lists them.
SHELL := /bin/bash
NODE_TEST := node --import tsx --test --test-reporter=tap
WASM := build/ws-governor.wasm
FLEET_WASM := build/ws-governor-fleet.wasm
LEAN_WASM := build/ws-governor-lean.wasm

.DEFAULT_GOAL := help
.PHONY: help deps build build-debug lint test test-checks test-unit test-emulator test-etcd test-fleet test-filter test-e2e test-delivery check-abi \
        check-config test-frames test-browser demo demo-serve bench bench-smoke soak e2e-docker e2e-envoy oci clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

deps: ## install pinned dependencies (npm ci)
	npm ci --no-audit --no-fund

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund

ASC := node node_modules/assemblyscript/bin/asc

# The debug build (with --pedantic, whose AS900 diagnostic means a cyclic managed type: AssemblyScript 0.17 would
# add its cycle collector, which nothing runs) compiles in the background while the release module is built.
# Incremental: the modules are rebuilt only when a source, asconfig.json, the post-processor or the installed
# toolchain changed (every test target depends on build, so consecutive targets do not recompile). A failed recipe
# deletes all three modules (.DELETE_ON_ERROR), so a failure is never hidden by an up-to-date file.
BUILD_INPUTS := $(shell find assembly -name '*.ts') assembly/tsconfig.json asconfig.json scripts/release-wasm.mjs \
	node_modules/.package-lock.json
.DELETE_ON_ERROR:

build: $(WASM) $(FLEET_WASM) $(LEAN_WASM) ## build the release modules build/ws-governor{,-fleet,-lean}.wasm (and the debug ones)
	@echo "release module: $$(stat -c %s $(WASM)) bytes; fleet module: $$(stat -c %s $(FLEET_WASM)) bytes; lean module: $$(stat -c %s $(LEAN_WASM)) bytes"

$(WASM) $(FLEET_WASM) $(LEAN_WASM) &: $(BUILD_INPUTS)
	@mkdir -p build/debug build/release
	@( $(ASC) assembly/index.ts --target debug --pedantic && \
	   $(ASC) assembly/fleet.ts --target debug-fleet --pedantic ) 2> build/debug/asc.log & debug=$$!; \
	  echo "asc assembly/index.ts --target release"; \
	  $(ASC) assembly/index.ts --target release && \
	  node scripts/release-wasm.mjs build/release/ws-governor.asc.wasm $(WASM) --unpacked build/release/ws-governor.unpacked.wasm && \
	  echo "asc assembly/fleet.ts --target release-fleet" && \
	  $(ASC) assembly/fleet.ts --target release-fleet && \
	  node scripts/release-wasm.mjs build/release/ws-governor-fleet.asc.wasm $(FLEET_WASM) --unpacked build/release/ws-governor-fleet.unpacked.wasm && \
	  echo "asc assembly/lean.ts --target release-lean" && \
	  $(ASC) assembly/lean.ts --target release-lean && \
	  node scripts/release-wasm.mjs build/release/ws-governor-lean.asc.wasm $(LEAN_WASM) --unpacked build/release/ws-governor-lean.unpacked.wasm; \
	  rc=$$?; \
	  if ! wait $$debug; then cat build/debug/asc.log; exit 1; fi; \
	  if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	  if grep -q AS900 build/debug/asc.log; then grep -A4 AS900 build/debug/asc.log; \
	    echo "build: a managed type is cyclic: AssemblyScript 0.17 would add its cycle collector, which nothing runs (leak)"; \
	    exit 1; fi

lint: node_modules/.package-lock.json ## typecheck the harness; assembly/core stays pure; only docs/ may refer to the sibling shared/ folder
	npx tsc --noEmit -p tsconfig.json
	@if grep -rnE 'from "(@solo-io/proxy-runtime[^"]*|\.\./host[^"]*|\.\./filter[^"]*)"' assembly/core; then \
	  echo "lint: assembly/core must stay pure (no SDK, host or filter imports)"; exit 1; fi
	@echo "lint: assembly/core is pure"
	@if git grep -n -e '\.\./shared' -- ':!docs/'; then \
	  echo "lint: the tracked files above refer to the sibling shared/ folder, which a clone does not have (only docs/ may)"; exit 1; fi
	@echo "lint: no tracked file outside docs/ refers to the sibling shared/ folder"

check-abi: build ## would Envoy 1.30–1.36 link the modules? (imports, signatures, ABI, allocator), budgets 40 KiB / 80 KiB
	node tools/checks/check-abi.mjs $(WASM) $(FLEET_WASM) $(LEAN_WASM)
	@size=$$(stat -c %s $(WASM)); echo "release size: $$size bytes (budget ≤ 40960)"; \
	  if [ $$size -gt 40960 ]; then echo "check-abi: the release module is over its 40 KiB budget"; exit 1; fi
	@size=$$(stat -c %s $(FLEET_WASM)); echo "fleet size: $$size bytes (budget ≤ 81920)"; \
	  if [ $$size -gt 81920 ]; then echo "check-abi: the fleet module is over its 80 KiB budget"; exit 1; fi
	@size=$$(stat -c %s $(LEAN_WASM)); echo "lean size: $$size bytes (budget ≤ 40960)"; \
	  if [ $$size -gt 40960 ]; then echo "check-abi: the lean module is over its 40 KiB budget"; exit 1; fi
	node tools/checks/local-module.mjs $(WASM) $(FLEET_WASM) $(LEAN_WASM)

check-config: node_modules/.package-lock.json ## validate the Envoy configs in envoy/ and k8s/ against Envoy's v3 protos (@grpc/grpc-js-xds)
	node tools/checks/check-config.mjs envoy k8s

test-checks: build ## check-abi against synthetic modules, check-config against test/checks/broken-configs
	$(NODE_TEST) test/checks/*.test.ts

test-unit: node_modules/.package-lock.json ## as-pect specs of the pure core (test/unit)
	node node_modules/@as-pect/cli/lib/test --config=as-pect.config.cjs

test-emulator: node_modules/.package-lock.json ## emulator conformance (envoy-host.md rules, probe modules) + proxy self-test
	$(NODE_TEST) test/emulator/*.test.ts

test-etcd: node_modules/.package-lock.json ## etcd 3.4 JSON gateway facts fleet mode relies on, against a real etcd-server (test/etcd)
	$(NODE_TEST) test/etcd/*.test.ts

test-fleet: build ## fleet mode: emulated Envoy processes with the fleet module sharing a real etcd (test/fleet)
	$(NODE_TEST) test/fleet/*.test.ts

test-filter: build ## the release module inside the emulator: behaviours 1–10, races, traps, soak
	$(NODE_TEST) test/filter/*.test.ts test/soak/*.test.ts

test-e2e: build ## real ws clients through the emulated Envoy (E2E_TARGETS=emulated|docker|binary)
	$(NODE_TEST) test/e2e/e2e.test.ts test/e2e/gateway.test.ts test/e2e/spoofing.test.ts test/e2e/identity.test.ts test/e2e/clock.test.ts test/e2e/lean.test.ts

test-frames: build ## frame inspection end to end (ws clients, raw sockets, permessage-deflate on/off, close codes)
	$(NODE_TEST) test/e2e/frames.test.ts

test-browser: build ## headless Chromium: browser WebSocket close 1009, live demo page (screenshot in build/screenshots)
	$(NODE_TEST) test/browser/*.test.ts

test-delivery: build ## envoy/, k8s/, schema, OCI and dashboard validation
	$(NODE_TEST) test/delivery/*.test.ts

test: lint check-abi check-config test-checks test-unit test-emulator test-etcd test-fleet test-filter test-e2e test-frames test-browser test-delivery bench-smoke ## everything CI runs
	@echo "make test: all suites passed"

demo: build ## the filter in the emulated Envoy with three demo pods: a scripted tour (ARGS=--serve keeps it running)
	node --import tsx scripts/demo.ts $(ARGS)

demo-serve: build ## like demo, kept running for any WebSocket client
	node --import tsx scripts/demo.ts --serve $(ARGS)

bench: build ## benchmarks as ratios in one run (ARGS=--write updates BENCHMARKS.md)
	node --import tsx bench/run.ts $(ARGS)

bench-smoke: build ## a tiny bench run so the benchmarks cannot rot (no timing assertions)
	node --import tsx bench/run.ts --smoke

soak: build ## not in CI: 1M upgrade attempts, 10k fuzzed configs, 1M frame chunkings; prints a summary (SOAK_SCALE=0.1 or ARGS=--part=configs)
	node --import tsx test/soak/run.ts $(ARGS)

e2e-docker: build ## the e2e scenarios against real Envoy in Docker (needs a Docker engine)
	E2E_TARGETS=docker $(NODE_TEST) test/e2e/e2e.test.ts

e2e-envoy: build ## the e2e scenarios against a local Envoy binary: ENVOY_BIN=/path/to/envoy make e2e-envoy
	E2E_TARGETS=binary $(NODE_TEST) test/e2e/e2e.test.ts

oci: build ## OCI image layouts + tarballs of the three modules (Wasm OCI artifacts for Istio), no Docker needed
	node --import tsx scripts/oci.ts --wasm $(WASM) --out build/oci
	node --import tsx scripts/oci.ts --wasm $(FLEET_WASM) --out build/oci-fleet --tar build/ws-governor-fleet-oci.tar --title ws-governor-fleet.wasm
	node --import tsx scripts/oci.ts --wasm $(LEAN_WASM) --out build/oci-lean --tar build/ws-governor-lean-oci.tar --title ws-governor-lean.wasm

clean: ## remove build outputs
	rm -rf build
