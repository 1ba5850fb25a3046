# Sanitizers, valgrind and fuzzing: `make test-asan`, `make test-valgrind`,
# `make fuzz` (issue 5).  Included by the top Makefile (-include t/quality.mk);
# uses its BUILD, MODULE, SO, NGX_TREE, NGX_MAKEFILE, ngx_inputs and
# CONFIGURE_ENV.  The recipes' shell is in util/*.sh (each says what it
# takes).  Outputs go to build/asan, build/valgrind and build/fuzz; nothing
# here touches build/nginx-src or build/$(MODULE).so (besides configuring
# build/nginx-src through the top Makefile's own rule, which the fuzz
# targets need for ngx_auto_config.h).
#
#   make test-asan      t/ against an ASan+UBSan build (ASAN_TESTS=... for a subset)
#   make test-valgrind  a representative t/ under memcheck (VG_TESTS=...)
#   make fuzz           every libFuzzer target for FUZZ_TIME s (FUZZ_TARGETS=...)
#   make fuzz-regress   seed corpora + kept crash inputs, no fuzzing (seconds)
#   make chaos          t/49-chaos.t: faults under load, then a soak (CHAOS_SOAK)
# Each exits non-zero on any finding and leaves its evidence in build/.
#
# Q_SRC is the module checkout that test-asan and the fuzz targets build
# (default: this one); the tests always come from this checkout's t/.

Q_SRC       ?= $(CURDIR)
Q_NGINX     ?= /usr/sbin/nginx
Q_PROVE_ARGS ?=

.PHONY: test-asan asan-build test-valgrind fuzz fuzz-build fuzz-regress quality-deps chaos

# what these targets need besides `make deps` (Debian 12): gcc's libasan8
# and libubsan1 come with gcc; clang and its libFuzzer runtime; valgrind
QUALITY_PACKAGES := clang-14 libclang-rt-14-dev valgrind wrk

quality-deps:
	@$(MAKE) --no-print-directory deps
	@util/deps.sh $(QUALITY_PACKAGES)


# --- make test-asan ---------------------------------------------------------
#
# A second nginx tree, build/asan/nginx-src, configured by the same
# util/configure.sh as build/nginx-src (Debian's conf_flags, NGX_CC_OPT,
# NGX_LD_OPT: the same ngx_auto_config.h, so the module's structs match the
# installed nginx), with the sanitizers added to objs/Makefile's CFLAGS and
# LINK only (util/configure.sh says why not to configure's own flags), and
# remade on the same inputs as the top Makefile's (here: Q_SRC's).
# -O1 and -U_FORTIFY_SOURCE: ASan intercepts memcpy() & co, not the
# __memcpy_chk() that fortified code calls.
#
# The module then needs the ASan runtime first in the process: Debian's
# nginx is not instrumented, so build/asan/nginx (a wrapper written by
# util/asan-nginx.sh) LD_PRELOADs gcc's libasan (the compiler that builds the
# module) and execs the real nginx.  Every malloc of nginx, jansson, hiredis
# is then ASan's, so LSan sees the whole process at exit; t/lib/lsan.supp
# lists the few leaks that are nginx's own (each line says why).  Reports go
# to build/asan/reports/ (log_path), never only to a terminal; the error
# logs of every test environment are kept (SD_KEEP=1 in a private TMPDIR)
# and searched as well (util/test-asan.sh).

ASAN_DIR      := $(BUILD)/asan
ASAN_TREE     := $(ASAN_DIR)/nginx-src
ASAN_MAKEFILE := $(ASAN_TREE)/objs/Makefile
ASAN_INPUTS   := $(ASAN_DIR)/configure.inputs
ASAN_SO       := $(ASAN_DIR)/$(MODULE).so
ASAN_NGINX    := $(ASAN_DIR)/nginx
ASAN_REPORTS  := $(ASAN_DIR)/reports
ASAN_CFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -U_FORTIFY_SOURCE
ASAN_LDFLAGS  := -fsanitize=address,undefined
ASAN_CC       ?= gcc
ASAN_TESTS    ?= t/
LSAN_SUPP     := $(CURDIR)/t/lib/lsan.supp

# Q_SRC's module sources and scripts; its config.make and generator, if it
# has them (an older checkout embeds its scripts at configure time)
Q_MOD_SOURCES := $(wildcard $(Q_SRC)/$(MODULE)/*.c $(Q_SRC)/$(MODULE)/*.h)
Q_LUA_SCRIPTS := $(wildcard $(Q_SRC)/redis/*.lua)
Q_CONFIG      := $(Q_SRC)/config $(wildcard $(Q_SRC)/config.make)
Q_EMBED       := $(wildcard $(Q_SRC)/util/embed-scripts.sh)

# rewritten (and then newer than objs/Makefile) only when its text changed
ASAN_INPUTS_TEXT := $(call ngx_inputs,$(Q_SRC),$(ASAN_CFLAGS),$(ASAN_LDFLAGS))
ifneq ($(ASAN_INPUTS_TEXT),$(strip $(file <$(ASAN_INPUTS))))
$(ASAN_INPUTS): FORCE
endif
$(ASAN_INPUTS): | $(ASAN_DIR)
	$(if $(DRY_RUN),,$(file >$@,$(ASAN_INPUTS_TEXT)))

$(ASAN_DIR):
	@mkdir -p $@

$(ASAN_MAKEFILE): $(ASAN_INPUTS) $(Q_CONFIG) util/configure.sh
	@$(CONFIGURE_ENV) MODULE_DIR='$(Q_SRC)' flock $(ASAN_DIR)/.lock \
	    util/configure.sh $(ASAN_TREE) $(ASAN_DIR)/configure.log \
	    '$(ASAN_CFLAGS)' '$(ASAN_LDFLAGS)'

# rewritten at every build (the libasan path comes from ASAN_CC)
$(ASAN_NGINX): FORCE | $(ASAN_DIR)
	@ASAN_CC='$(ASAN_CC)' ASAN_SO='$(ASAN_SO)' ASAN_REPORTS='$(ASAN_REPORTS)' \
	    LSAN_SUPP='$(LSAN_SUPP)' Q_NGINX='$(Q_NGINX)' util/asan-nginx.sh $@

# the load check runs the wrapper: the runtime, the wrapper and the .so
# load together
$(ASAN_SO): $(ASAN_MAKEFILE) $(Q_MOD_SOURCES) $(Q_LUA_SCRIPTS) $(Q_EMBED) \
            util/build-module.sh | $(ASAN_NGINX)
	@$(SUBMAKE)MAKE='$(MAKE_CMD)' MAKE_LOG='$(ASAN_DIR)/make.log' flock $(ASAN_DIR)/.lock \
	    util/build-module.sh $(ASAN_TREE) $@ $(ASAN_NGINX) CC=$(ASAN_CC)

asan-build: quality-deps
	@$(MAKE) --no-print-directory $(ASAN_SO)
	@echo "asan: $(ASAN_SO) (nginx wrapper: $(ASAN_NGINX))"

# the unit tests are ASan/UBSan builds already (t/unit/unit.mk)
test-asan: asan-build
	@$(MAKE) --no-print-directory unit
	@ASAN_SO='$(ASAN_SO)' ASAN_NGINX='$(ASAN_NGINX)' ASAN_REPORTS='$(ASAN_REPORTS)' \
	    ASAN_TESTS='$(ASAN_TESTS)' Q_PROVE_ARGS='$(Q_PROVE_ARGS)' util/test-asan.sh


# --- make test-valgrind -----------------------------------------------------
#
# The module as `make build` makes it (-O2 -g), in Debian's nginx with
# "master_process off" (SD_MASTER_PROCESS=off: one process, so every
# request, timer and exit hook runs under valgrind), through the wrapper
# build/valgrind/nginx (SD_NGINX) that runs memcheck; `nginx -t` runs
# without valgrind (configuration parsing runs under it at every start).
# One log per nginx process in build/valgrind/logs; each must end with
# "ERROR SUMMARY: 0 errors" (definite leaks count as errors:
# --errors-for-leak-kinds=definite) and no "definitely lost" record.
# t/lib/valgrind.supp holds the suppressions for nginx's own, documented
# false positives (each says why).  VG_TESTS picks the tests: by default
# every route and error path (10, 20, 22, and 50-55: listing, batch, notes,
# notifications, routing), Redis loss, pause and timeouts (30) and the
# hostile input tests (40).  Not 31-reload.t and 52-bulk-update.t: they
# signal workers, which "master_process off" does not have.

VG_DIR    := $(BUILD)/valgrind
VG_NGINX  := $(VG_DIR)/nginx
VG_LOGS   := $(VG_DIR)/logs
VG_SUPP   := $(CURDIR)/t/lib/valgrind.supp
VG_TESTS  ?= t/10-auth.t t/20-upsert.t t/22-get-delete.t t/30-redis-faults.t t/40-hostile.t \
             $(wildcard t/50-list.t t/51-batch.t t/53-notes.t t/54-notifications.t t/55-routing.t)
VALGRIND  ?= valgrind
VG_ARGS   ?= --tool=memcheck --leak-check=full --show-leak-kinds=definite \
             --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 \
             --track-fds=no --child-silent-after-fork=yes

define TEST_VALGRIND_SCRIPT
command -v $(VALGRIND) >/dev/null || { echo "test-valgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
rm -rf $(VG_LOGS)
mkdir -p $(VG_LOGS)
cat > $(VG_NGINX).tmp <<END
#!/bin/sh
# generated by t/quality.mk: Debian's nginx under memcheck, for
# SD_MASTER_PROCESS=off; nginx -t runs as it is
for a in "\$$@"; do
    case "\$$a" in -t|-T) exec $(Q_NGINX) "\$$@" ;; esac
done
exec $(VALGRIND) $(VG_ARGS) --suppressions=$(VG_SUPP) \
    --log-file=$(VG_LOGS)/vg.%p.log $(Q_NGINX) "\$$@"
END
chmod 0755 $(VG_NGINX).tmp
mv -f $(VG_NGINX).tmp $(VG_NGINX)
run=$$(mktemp -d /tmp/sd-valgrind.XXXXXX)
chmod 0755 $$run
echo "test-valgrind: SD_NGINX=$(VG_NGINX) SD_MASTER_PROCESS=off, logs in $(VG_LOGS)"
rc=0
TMPDIR=$$run SD_KEEP=1 SD_MASTER_PROCESS=off SD_START_TIMEOUT=60 SD_STOP_TIMEOUT=60 \
    SD_NGINX=$(VG_NGINX) SD_MODULE=$${SD_MODULE:-$(SO)} \
    prove -I t/lib --timer $(Q_PROVE_ARGS) $(VG_TESTS) || rc=$$?
bad=0; n=0; errors=0; lost=0
for f in $(VG_LOGS)/vg.*.log; do
    [ -f "$$f" ] || continue
    n=$$((n + 1))
    s=$$(grep -a 'ERROR SUMMARY:' "$$f" | tail -n 1)
    if [ -z "$$s" ]; then
        echo "=== $$f: no ERROR SUMMARY (nginx killed before valgrind finished?)"; tail -n 20 "$$f"; bad=1; continue
    fi
    e=$$(echo "$$s" | sed -E 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/')
    d=$$(grep -a 'definitely lost:' "$$f" | tail -n 1 | sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/' | tr -d ,)
    errors=$$((errors + e)); lost=$$((lost + $${d:-0}))
    if [ "$$e" != 0 ] || [ "$${d:-0}" != 0 ]; then
        echo "=== $$f: $$e errors, $${d:-0} bytes definitely lost"; cat "$$f"; bad=1
    fi
done
for f in $$run/*/error.log; do
    [ -f "$$f" ] || continue
    if grep -aP 'exited on signal (?!9\b)|\[alert\](?!.*exited on signal 9\b)' "$$f" >/dev/null; then
        echo "=== $$f"; grep -aP 'exited on signal (?!9\b)|\[alert\](?!.*exited on signal 9\b)' "$$f"; bad=1
    fi
done
[ $$n -gt 0 ] || { echo "test-valgrind: no valgrind log at all" >&2; bad=1; }
echo "test-valgrind: prove exit $$rc, $$n nginx processes under memcheck, $$errors errors, $$lost bytes definitely lost"
if [ $$rc != 0 ] || [ $$bad != 0 ]; then
    echo "test-valgrind: FAILED (environments kept in $$run)" >&2
    exit 1
fi
rm -rf $$run
echo "test-valgrind: PASS"
endef
export TEST_VALGRIND_SCRIPT

test-valgrind: quality-deps
	@$(MAKE) --no-print-directory build
	@mkdir -p $(VG_DIR)
	@bash -uo pipefail -c "$$TEST_VALGRIND_SCRIPT"


# --- make fuzz --------------------------------------------------------------
#
# libFuzzer harnesses (t/fuzz/fuzz_<target>.c), clang-14 with
# -fsanitize=fuzzer,address,undefined, each run for FUZZ_TIME seconds
# (default 60) from its seed corpus t/fuzz/corpus/<target>/ (new inputs go
# to build/fuzz/corpus/<target>/, crashes to build/fuzz/crashes/<target>/).
# Targets: every function that parses untrusted input and runs without an
# nginx runtime:
#   payload      parse_object + validate_customer (request bodies)
#   external_id  decode_external_id (path segments)
#   fields       the single-field rules on raw bytes
#   router       ngx_http_supportdesk_route (raw path + method)
#   reply        RESP (hiredis's reader) -> render_customer (Redis replies)
#   error        error_body with input field names (error envelopes)
#   query        query_next / query_decode / cursor_decode (listing; built
#                when ngx_http_supportdesk_query.c exists)
# They link the module's sources with t/fuzz/ngx_shim.c (nginx core
# functions they call: Debian ships no nginx core sources) and generated
# data stubs for every other nginx symbol (a call crashes at once).
# `make fuzz-regress` replays the seed corpora and t/fuzz/regressions/ (each
# crash ever found, kept) without fuzzing: seconds, for `make test`.

FUZZ_CC      ?= clang-14
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_TIME    ?= 60
FUZZ_ARGS    ?=
FUZZ_TARGETS ?= payload external_id fields router reply error \
                $(if $(wildcard $(Q_SRC)/$(MODULE)/ngx_http_supportdesk_query.c),query)
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -Wall -Wno-unused-parameter
FUZZ_INCS    := -I $(NGX_TREE)/src/core -I $(NGX_TREE)/src/event \
                -I $(NGX_TREE)/src/event/modules -I $(NGX_TREE)/src/os/unix \
                -I $(NGX_TREE)/objs -I $(NGX_TREE)/src/http \
                -I $(NGX_TREE)/src/http/modules -I $(NGX_TREE)/src/http/v2 \
                -I $(Q_SRC)/$(MODULE) -I $(CURDIR)/t/fuzz

define FUZZ_BUILD_SCRIPT
command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: $(FUZZ_CC) not found (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
srcs_for() {
    case $$1 in
        payload|external_id|fields) echo validate ;;
        router) echo router ;;
        reply) echo customers envelope validate ;;
        error) echo envelope validate ;;
        query) echo query ;;
        *) echo "fuzz: unknown target $$1" >&2; exit 1 ;;
    esac
}
for t in $(FUZZ_TARGETS); do
    o=$(FUZZ_DIR)/obj/$$t
    rm -rf $$o; mkdir -p $$o
    for s in $$(srcs_for $$t); do
        $(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_INCS) \
            -c $(Q_SRC)/$(MODULE)/ngx_http_supportdesk_$$s.c -o $$o/$$s.o
    done
    $(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_INCS) -c t/fuzz/fuzz_$$t.c -o $$o/harness.o
    $(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_INCS) -c t/fuzz/ngx_shim.c -o $$o/shim.o
    # every nginx symbol nobody defines: a zero-filled, non-executable stub
    nm -u $$o/*.o | awk '$$1 == "U" { print $$2 }' | grep '^ngx_' | sort -u > $$o/undef
    nm --defined-only $$o/*.o | awk '{ print $$NF }' | sort -u > $$o/def
    comm -23 $$o/undef $$o/def \
        | awk '{ printf "char %s[4096] __attribute__((aligned(64)));\n", $$1 }' > $$o/stubs.c
    $(FUZZ_CC) -c $$o/stubs.c -o $$o/stubs.o
    $(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $$o/*.o -o $(FUZZ_DIR)/fuzz_$$t \
        -ljansson -lhiredis -lcrypto
    echo "fuzz: built build/fuzz/fuzz_$$t ($$(wc -l < $$o/stubs.c) nginx symbols stubbed)"
done
endef
export FUZZ_BUILD_SCRIPT

define FUZZ_RUN_SCRIPT
fail=0
summary=
for t in $(FUZZ_TARGETS); do
    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crashes/$$t t/fuzz/corpus/$$t
    dict=; [ -f t/fuzz/$$t.dict ] && dict=-dict=t/fuzz/$$t.dict
    echo "fuzz: $$t for $(FUZZ_TIME)s (log: build/fuzz/$$t.log)"
    rc=0
    $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$t/ $$dict $(FUZZ_ARGS) \
        $(FUZZ_DIR)/corpus/$$t t/fuzz/corpus/$$t > $(FUZZ_DIR)/$$t.log 2>&1 || rc=$$?
    execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$t.log | tail -n 1)
    cov=$$(grep -aoE 'cov: [0-9]+' $(FUZZ_DIR)/$$t.log | tail -n 1 | sed 's/cov: //')
    corpus=$$(ls $(FUZZ_DIR)/corpus/$$t | wc -l)
    crashes=$$(ls $(FUZZ_DIR)/crashes/$$t | wc -l)
    line="$$t: $${execs:-?} executions, coverage $${cov:-?} edges, corpus $$corpus, exit $$rc, $$crashes crash file(s)"
    summary="$$summary$$line"$$'\n'
    echo "fuzz: $$line"
    if [ $$rc != 0 ]; then
        fail=1
        grep -aE -A25 '==ERROR|fuzz: assertion|runtime error|deadly signal' $(FUZZ_DIR)/$$t.log | head -n 40
        echo "fuzz: $$t: reproduce with build/fuzz/fuzz_$$t <crash file>; keep it in t/fuzz/regressions/$$t/"
    fi
done
printf '%s' "$$summary" > $(FUZZ_DIR)/summary.txt
echo "fuzz: summary (build/fuzz/summary.txt):"; cat $(FUZZ_DIR)/summary.txt
exit $$fail
endef
export FUZZ_RUN_SCRIPT

define FUZZ_REGRESS_SCRIPT
fail=0
for t in $(FUZZ_TARGETS); do
    files=$$(find t/fuzz/corpus/$$t t/fuzz/regressions/$$t -type f 2>/dev/null | sort)
    [ -n "$$files" ] || continue
    n=$$(echo "$$files" | wc -l)
    if $(FUZZ_DIR)/fuzz_$$t $$files > $(FUZZ_DIR)/$$t.regress.log 2>&1; then
        echo "fuzz-regress: $$t: $$n inputs ok"
    else
        echo "fuzz-regress: $$t: FAILED (log: build/fuzz/$$t.regress.log)"
        grep -aE -B2 -A20 '==ERROR|fuzz: assertion|runtime error|deadly signal' $(FUZZ_DIR)/$$t.regress.log | head -n 40
        fail=1
    fi
done
exit $$fail
endef
export FUZZ_REGRESS_SCRIPT

fuzz-build: quality-deps
	@$(MAKE) --no-print-directory $(NGX_MAKEFILE)
	@mkdir -p $(FUZZ_DIR)
	@bash -euo pipefail -c "$$FUZZ_BUILD_SCRIPT"

fuzz: fuzz-build
	@bash -uo pipefail -c "$$FUZZ_RUN_SCRIPT"

fuzz-regress: fuzz-build
	@bash -uo pipefail -c "$$FUZZ_REGRESS_SCRIPT"


# --- make chaos -------------------------------------------------------------
#
# t/49-chaos.t (skipped by `make test`): wrk's mixed load while Redis is
# killed and restarted, paused, made to drop its clients, and clients abort
# mid-request; then a CHAOS_SOAK-request soak (1,000,000) with worker RSS
# sampled.  Loopback only, bounded (about 1 + soak minutes), stops by
# itself.  Test environments in /dev/shm (Redis's AOF with appendfsync
# always costs nothing there).  SD_MODULE=... tests another build.

CHAOS_SOAK   ?= 1000000
CHAOS_ROUNDS ?= 3

chaos: quality-deps
	@$(MAKE) --no-print-directory build
	SD_CHAOS=1 CHAOS_SOAK=$(CHAOS_SOAK) CHAOS_ROUNDS=$(CHAOS_ROUNDS) \
	    TMPDIR=$$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo /tmp ) \
	    prove -v -I t/lib --timer t/49-chaos.t
