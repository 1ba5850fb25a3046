# C unit tests of the validators and the externalId decoder, of the
# cluster's key slots, redirections and slot maps, of the replies'
# arena, of SipHash (the key cache's names of API keys) and of the
# idempotency records' answers (msgpack).
#
# Included by the top Makefile; paths are relative to the repository root.
# `make unit` builds build/unit/test_validate (validate.c + the tests, linked
# with libjansson only) and runs it through prove, which reads its TAP.
#
# NGX_SRC is a configured nginx source tree (for ngx_auto_config.h); point it
# elsewhere while developing: make unit NGX_SRC=/tmp/ngxsrc
# UNIT_NGX_DEPS is what configures NGX_SRC first: the top Makefile's
# $(NGX_MAKEFILE) rule, unless NGX_SRC was given on the command line (that
# rule would then re-copy, i.e. rm -rf, the tree given).

NGX_SRC ?= build/nginx-src
UNIT_CC ?= cc

ifneq ($(origin NGX_SRC),command line)
UNIT_NGX_DEPS ?= $(NGX_MAKEFILE)
endif

UNIT_DIR = build/unit
UNIT_BIN = $(UNIT_DIR)/test_validate
UNIT_CLUSTER_BIN = $(UNIT_DIR)/test_cluster
UNIT_REPLY_BIN = $(UNIT_DIR)/test_reply
UNIT_SIPHASH_BIN = $(UNIT_DIR)/test_siphash
UNIT_MSGPACK_BIN = $(UNIT_DIR)/test_msgpack

# UBSan must abort, not just print, or prove would report a pass
UNIT_CFLAGS = -Wall -Wextra -Werror -g -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all

UNIT_INCS = -I $(NGX_SRC)/src/core -I $(NGX_SRC)/src/event \
	-I $(NGX_SRC)/src/event/modules -I $(NGX_SRC)/src/os/unix \
	-I $(NGX_SRC)/objs -I ngx_http_supportdesk_module

UNIT_SRCS = t/unit/test_validate.c \
	ngx_http_supportdesk_module/ngx_http_supportdesk_validate.c

UNIT_HDRS = t/unit/tap.h \
	ngx_http_supportdesk_module/ngx_http_supportdesk_validate.h

.PHONY: unit unit-build

unit: $(UNIT_BIN) $(UNIT_CLUSTER_BIN) $(UNIT_REPLY_BIN) $(UNIT_SIPHASH_BIN) \
		$(UNIT_MSGPACK_BIN)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		prove -e '' $(UNIT_BIN) $(UNIT_CLUSTER_BIN) $(UNIT_REPLY_BIN) \
		$(UNIT_SIPHASH_BIN) $(UNIT_MSGPACK_BIN)

unit-build: $(UNIT_BIN) $(UNIT_CLUSTER_BIN) $(UNIT_REPLY_BIN) $(UNIT_SIPHASH_BIN) \
		$(UNIT_MSGPACK_BIN)

# idempotency records' answers (msgpack.c alone; the pool's allocators
# stubbed in the test)
$(UNIT_MSGPACK_BIN): t/unit/test_msgpack.c t/unit/tap.h \
		ngx_http_supportdesk_module/ngx_http_supportdesk_msgpack.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_msgpack.h \
		| $(UNIT_NGX_DEPS)
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_INCS) -o $@ t/unit/test_msgpack.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_msgpack.c

# SipHash-2-4-128 against the reference vectors (siphash.c alone)
$(UNIT_SIPHASH_BIN): t/unit/test_siphash.c t/unit/tap.h \
		ngx_http_supportdesk_module/ngx_http_supportdesk_siphash.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_siphash.h \
		| $(UNIT_NGX_DEPS)
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_INCS) -o $@ t/unit/test_siphash.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_siphash.c

# the replies' arena (reply.c, linked with libhiredis only; ngx_alloc()
# and ngx_calloc() stubbed in the test)
$(UNIT_REPLY_BIN): t/unit/test_reply.c t/unit/tap.h t/unit/ngx_alloc_stub.h \
		ngx_http_supportdesk_module/ngx_http_supportdesk_reply.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_reply.h \
		| $(UNIT_NGX_DEPS)
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_INCS) -o $@ t/unit/test_reply.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_reply.c -lhiredis

# the cluster's slots and verdicts (cluster.c, linked with libhiredis only)
$(UNIT_CLUSTER_BIN): t/unit/test_cluster.c t/unit/tap.h \
		ngx_http_supportdesk_module/ngx_http_supportdesk_cluster.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_cluster.h \
		| $(UNIT_NGX_DEPS)
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_INCS) -o $@ t/unit/test_cluster.c \
		ngx_http_supportdesk_module/ngx_http_supportdesk_cluster.c -lhiredis

$(UNIT_BIN): $(UNIT_SRCS) $(UNIT_HDRS) | $(UNIT_NGX_DEPS)
	@test -f $(NGX_SRC)/objs/ngx_auto_config.h || { \
		echo "unit: $(NGX_SRC) is not a configured nginx tree" \
		     "(run 'make build' or set NGX_SRC)" >&2; exit 1; }
	@mkdir -p $(UNIT_DIR)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_INCS) -o $@ $(UNIT_SRCS) -ljansson
