# mmsim — the two commands of the README are `make demo` and `make test`.
# No target installs tools or reaches the network; the Go toolchain fetches
# the module's own dependencies.

GO         ?= go
PKG        ?= ./...
TESTS      ?= .
TAGS       ?= invariants
TESTFLAGS  ?=
BENCH      ?= .
BENCHFLAGS ?= -benchmem
FUZZ       ?=
FUZZPKG    ?=
FUZZTIME   ?= 30s
SHARED     ?= ../shared

# The example programs `make demo` runs, in order.
EXAMPLES := tour gfp-decode watermarks oom-kill nofs-reclaim noreclaim-scope kvmalloc-fallback nofs-workqueue nested-mask droppable secretmem memcg-oom replay fault-inject

.PHONY: help demo examples test fmt-check vet tidy-check bench fuzz cover golden testdata

help: ## print this help
	@echo 'mmsim: a userspace simulator of the Linux kernel memory allocators'
	@echo
	@echo 'usage: make <target> [VAR=value ...]'
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 14
	@echo
	@echo 'variables: GO PKG TESTS TAGS TESTFLAGS BENCH BENCHFLAGS FUZZ FUZZPKG FUZZTIME'

demo: ## run every example program
	@for e in $(EXAMPLES); do \
		echo "=== examples/$$e"; \
		$(GO) run ./examples/$$e || exit 1; \
		echo; \
	done

examples: ## build every example program and run its tests
	$(GO) build ./examples/...
	$(GO) test ./examples/...

test: fmt-check vet ## gofmt check, go vet, then every test with the race detector and invariants
	$(GO) test -race -tags '$(TAGS)' -timeout 30m -run '$(TESTS)' $(TESTFLAGS) $(PKG)

fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet: ## go vet, with and without the invariants tag
	$(GO) vet $(PKG)
	$(GO) vet -tags '$(TAGS)' $(PKG)

tidy-check: ## fail if go.mod or go.sum is not tidy
	$(GO) mod tidy -diff

bench: ## run the benchmarks (BENCH=regexp, PKG=packages)
	$(GO) test -run '^$$' -bench '$(BENCH)' $(BENCHFLAGS) $(PKG)

fuzz: ## run FUZZ in FUZZPKG for FUZZTIME, or every fuzz target for FUZZTIME each
	@if [ -n "$(FUZZ)" ]; then \
		$(GO) test -run '^$$' -fuzz '^$(FUZZ)$$' -fuzztime $(FUZZTIME) $(or $(FUZZPKG),$(PKG)); \
	else \
		for pkg in $$($(GO) list $(PKG)); do \
			for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
				echo "=== $$pkg $$f"; \
				$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
			done; \
		done; \
	fi

cover: ## test with coverage; writes cover.out and prints the total
	$(GO) test -tags '$(TAGS)' -coverprofile=cover.out $(PKG)
	$(GO) tool cover -func=cover.out | tail -1

golden: ## rewrite golden files from the current output (review the diff!)
	$(GO) test -run '$(TESTS)' $$($(GO) list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' $(PKG) | \
		grep 'internal/testutil' | cut -d' ' -f1) -update

testdata: ## regenerate gfp/testdata/perf_gfp_flags.txt from the captures in SHARED/traces
	@test -d '$(SHARED)/traces' || { echo 'no $(SHARED)/traces (set SHARED=...)'; exit 1; }
	@{ echo "# Real Linux 6.18.44 x86_64 perf script output (kmem, vmscan tracepoints), trimmed:"; \
	  echo "# the first event line of each distinct (file, event, gfp_flags, migratetype) in the"; \
	  echo "# four captures of mmsim's shared traces. Regenerate with 'make testdata' (see Makefile)."; \
	  for f in memcg_pressure_run1 page_anon_mmap page_tar_xz slab_mix; do \
	    echo "# from $$f.perf.txt.gz"; \
	    gzip -dc '$(SHARED)'/traces/$$f.perf.txt.gz | grep -v '^#' | grep 'gfp_flags=' | awk '{ \
	      ev=""; gf=""; mt=""; \
	      for (i = 1; i <= NF; i++) { \
	        if ($$i ~ /^[a-z]+:[a-z_0-9]+:$$/) ev = $$i; \
	        if ($$i ~ /^gfp_flags=/) gf = $$i; \
	        if ($$i ~ /^migratetype=/) mt = $$i; \
	      } \
	      k = ev " " gf " " mt; if (!(k in seen)) { seen[k] = 1; print } }'; \
	  done; } > gfp/testdata/perf_gfp_flags.txt
