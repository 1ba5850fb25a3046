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
# every route and error path (10, 11: the key cache under a flood, 20,
# 22, 50-55: listing, batch, notes, notifications, routing, 58: metadata
# numbers, and 60-62: the change feed and its long poll, idempotency,
# conditional requests), Redis loss, pause and timeouts (30), writes
# paused (46), jobs between apps (59), the hostile input tests (40) and the
# cluster's redirects and refusals on fake nodes (72).  Not 31-reload.t
# and 52-bulk-update.t: they
# signal workers, which "master_process off" does not have.

VG_DIR    := $(BUILD)/valgrind
VG_NGINX  := $(VG_DIR)/nginx
VG_LOGS   := $(VG_DIR)/logs
VG_SUPP   := $(CURDIR)/t/lib/valgrind.supp
VG_TESTS  ?= t/10-auth.t t/20-upsert.t t/22-get-delete.t t/24-redis-resolver.t t/30-redis-faults.t t/40-hostile.t \
             $(wildcard t/11-key-flood.t t/50-list.t t/51-batch.t t/53-notes.t t/54-notifications.t t/55-routing.t \
                        t/37-redis-wait.t t/38-redis-tls.t t/39-redis-sentinel.t \
                        t/46-client-pause.t t/57-http-edges.t t/58-metadata-numbers.t \
                        t/59-jobs.t t/60-events.t t/61-idempotency.t t/62-conditional.t \
                        t/65-metrics.t t/72-cluster-fake.t)
VALGRIND  ?= valgrind
VG_ARGS   ?= --tool=memcheck --leak-check=full --show-leak-kinds=definite \
             --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 \
             --track-fds=no --child-silent-after-fork=yes

test-valgrind: quality-deps
	@$(MAKE) --no-print-directory build
	@mkdir -p $(VG_DIR)
	@VALGRIND='$(VALGRIND)' VG_ARGS='$(VG_ARGS)' VG_SUPP='$(VG_SUPP)' \
	    VG_NGINX='$(VG_NGINX)' VG_LOGS='$(VG_LOGS)' VG_TESTS='$(VG_TESTS)' \
	    Q_NGINX='$(Q_NGINX)' SD_MODULE='$(or $(SD_MODULE),$(SO))' \
	    Q_PROVE_ARGS='$(Q_PROVE_ARGS)' util/test-valgrind.sh


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
                $(if $(wildcard $(Q_SRC)/$(MODULE)/ngx_http_supportdesk_query.c),query) \
                $(if $(wildcard $(Q_SRC)/$(MODULE)/ngx_http_supportdesk_msgpack.c),msgpack)
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -Wall -Wno-unused-parameter
FUZZ_INCS    := -I $(NGX_TREE)/src/core -I $(NGX_TREE)/src/event \
                -I $(NGX_TREE)/src/event/modules -I $(NGX_TREE)/src/os/unix \
                -I $(NGX_TREE)/objs -I $(NGX_TREE)/src/http \
                -I $(NGX_TREE)/src/http/modules -I $(NGX_TREE)/src/http/v2 \
                -I $(Q_SRC)/$(MODULE) -I $(CURDIR)/t/fuzz

# the fuzz target -> module sources table is at the top of util/fuzz-build.sh
fuzz-build: quality-deps
	@$(MAKE) --no-print-directory $(NGX_MAKEFILE)
	@mkdir -p $(FUZZ_DIR)
	@FUZZ_CC='$(FUZZ_CC)' FUZZ_CFLAGS='$(FUZZ_CFLAGS)' FUZZ_INCS='$(FUZZ_INCS)' \
	    FUZZ_DIR='$(FUZZ_DIR)' FUZZ_TARGETS='$(FUZZ_TARGETS)' \
	    MODULE_SRC='$(Q_SRC)/$(MODULE)' util/fuzz-build.sh

fuzz: fuzz-build
	@FUZZ_DIR='$(FUZZ_DIR)' FUZZ_TARGETS='$(FUZZ_TARGETS)' FUZZ_TIME='$(FUZZ_TIME)' \
	    FUZZ_ARGS='$(FUZZ_ARGS)' util/fuzz-run.sh

fuzz-regress: fuzz-build
	@FUZZ_DIR='$(FUZZ_DIR)' FUZZ_TARGETS='$(FUZZ_TARGETS)' util/fuzz-regress.sh


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
