# ngx_http_supportdesk_module: build, test and local run.  `make help` lists
# the targets.  GNU make (4.2 or later: $(file <)); the recipes' shell is in
# util/*.sh, each saying what it does and what it takes, called with the
# make variables it needs as arguments or environment variables.

SHELL := /bin/bash
.DEFAULT_GOAL := build

MODULE      := ngx_http_supportdesk_module
BUILD       := $(CURDIR)/build
VAR         := $(CURDIR)/var
SO          := $(BUILD)/$(MODULE).so

# nginx sources shipped by Debian's nginx-dev (headers, auto/, configure and
# conf_flags: the ./configure flags of the packaged nginx binary)
NGINX_DIST  ?= /usr/share/nginx/src
# our configured copy (NGX_SRC is t/unit/unit.mk's name for the tree the unit
# tests compile against: overriding it never touches this one)
NGX_TREE    := $(BUILD)/nginx-src
NGX_MAKEFILE := $(NGX_TREE)/objs/Makefile
NGX_INPUTS  := $(BUILD)/configure.inputs

NGX_CC_OPT  := -g -O2 -fstack-protector-strong -Wformat -Werror=format-security \
               -fPIC -D_FORTIFY_SOURCE=2
# The module's own warnings.  Not in --with-cc-opt: util/configure.sh
# appends them to objs/Makefile's CFLAGS after configure (it says why).
MOD_CFLAGS  := -Wall -Wextra -Werror
NGX_LD_OPT  := -Wl,-z,relro -Wl,-z,now -fPIC

MOD_SOURCES := $(wildcard $(MODULE)/*.c $(MODULE)/*.h)
LUA_SCRIPTS := $(wildcard redis/*.lua)

# what `make deps` installs (and .ci/run, through `make print-deps`);
# prometheus for promtool, which t/65 and t/66 run on the metrics and on
# README's example alerts (the package's server is not used)
DEB_PACKAGES := nginx-core nginx-dev libhiredis-dev libjansson-dev libssl-dev \
                libpcre2-dev zlib1g-dev libc6-dev redis-server redis-tools openssl \
                libredis-perl libjson-pp-perl perl curl gcc make prometheus

# what `make deb` and `make test-deb` need besides DEB_PACKAGES (debhelper
# with dh_nginx, which comes with nginx-dev; dpkg-buildpackage; lintian);
# printed by `make print-deps` too, so that .ci/run installs them up front
PKG_PACKAGES := debhelper dpkg-dev lintian
DEB_OUT     := $(BUILD)/deb

# `make run`
NGINX       ?= /usr/sbin/nginx
REDIS_SERVER ?= redis-server
REDIS_CLI   ?= redis-cli
RUN_PORT    ?= 8080
REDIS_PORT  ?= 6390

PROVE_ARGS  ?=

# openapi.yaml's checks (make test): the npm tools of t/openapi/package.json
# (versions pinned by its package-lock.json) in build/node; the answers the
# t/ suite receives, recorded there by the harness (SD_RECORD_DIR)
NODE_DIR    := $(BUILD)/node
ANSWERS     := $(BUILD)/answers
# Node.js and npm: Debian's, only when the commands are missing (util/deps.sh
# COMMAND:PACKAGE).  Not in DEB_PACKAGES: a machine with NodeSource's nodejs
# (which conflicts with Debian's npm) keeps its own.
NODE_PACKAGES := node:nodejs npm:npm


.PHONY: help build deps print-deps unit test test-cluster test-tls run stop clean FORCE \
        openapi-deps openapi-lint openapi-check deb deb-deps test-deb


define HELP_TEXT
Targets:
  make [build]   build build/$(MODULE).so against the installed nginx
                 (nginx-dev sources copied to build/nginx-src and configured
                 with the packaged nginx's own flags + this module)
  make deps      install the missing Debian packages (apt-get, sudo if not root):
                 $(DEB_PACKAGES)
  make test      deps + build + C unit tests (make unit) + fuzz regressions +
                 openapi-lint + prove -I t/lib t/ (answers recorded), the same
                 again on a Redis Cluster (SD_CLUSTER=1, see test-cluster) +
                 openapi-check
  make test-cluster  deps + build, then only the cluster pass: prove t/ with
                 SD_CLUSTER=1 (3 masters, 3 replicas per environment)
  make test-tls  deps + build, then the TLS passes (not part of make test;
                 .ci/run runs it after): prove t/ with SD_TLS=1 on one Redis,
                 then with SD_TLS=1 SD_CLUSTER=1 (every Redis and cluster
                 node TLS with a test CA, nginx verifying it)
  make openapi-lint   lint openapi.yaml (@redocly/cli, pinned, in build/node)
  make openapi-check  the validator's unit test, then the answers of the last
                 make test (build/answers) against openapi.yaml
  make unit      C unit tests (t/unit/unit.mk), needs a configured build
  make deb       the Debian package libnginx-mod-http-supportdesk (debian/,
                 dh --with nginx) in build/deb, then lintian (fails on errors)
  make test-deb  (root) make deb, then install it (dpkg -i), nginx -t, serve
                 authenticated requests with it on private ports, remove it
  make run       deps + build, then start a private redis-server (127.0.0.1:$(REDIS_PORT),
                 data and AOF in var/redis) and nginx (127.0.0.1:$(RUN_PORT), conf,
                 logs and temp files in var/nginx), create a demo API key and
                 print it with a curl example; running it again restarts nginx
                 (new .so) and reuses redis and the key
  make stop      stop the nginx and redis-server started by make run
  make clean     stop, then remove build/ and var/
  make print-deps  print the Debian package list

Variables: RUN_PORT=$(RUN_PORT) REDIS_PORT=$(REDIS_PORT) NGINX=$(NGINX)
           PROVE_ARGS= (extra prove options, e.g. PROVE_ARGS=-v)
endef
export HELP_TEXT

help:
	@echo "$$HELP_TEXT"

print-deps:
	@echo $(DEB_PACKAGES) $(PKG_PACKAGES)


# --- deps -------------------------------------------------------------------

deps:
	@util/deps.sh $(DEB_PACKAGES)


# --- build ------------------------------------------------------------------
#
# build/nginx-src/objs/Makefile (configure) is remade when config,
# config.make or util/configure.sh change, or $(NGX_INPUTS): what else
# configure depends on, the nginx-dev version (a new one also gets a fresh
# copy of its sources), the flags, the list of headers and the list of
# redis/*.lua (config.make reads it).  The contents of the scripts are not
# in it: objs/Makefile regenerates objs/ngx_http_supportdesk_scripts.c from
# them (the rule config.make adds), so editing a script, like editing C
# sources, only re-runs `make modules`.
#
# Several people (or make test and make run) may build in one checkout at
# the same time: each step that writes build/nginx-src holds build/.lock,
# or two configures mix their autotests and logs (seen: "C99 variadic
# macros ... found but is not working", then a .so that needs a function
# ngx_log_error, which nginx does not have, and cannot be loaded).  Two
# builds that both found the tree stale configure one after the other.

NGX_DEV_VERSION := $(shell . ./util/lib.sh && nginx_dev_version $(NGINX_DIST))

# $(call ngx_inputs,MODULE_DIR,EXTRA_CFLAGS,EXTRA_LDFLAGS): the text of an
# inputs file (t/quality.mk uses it for the sanitizer build)
ngx_inputs = $(strip nginx-dev $(NGX_DEV_VERSION); module $1; \
    cc-opt $(NGX_CC_OPT); ld-opt $(NGX_LD_OPT); cflags $(MOD_CFLAGS) $2; \
    ldflags $3; headers $(notdir $(wildcard $1/$(MODULE)/*.h)); \
    scripts $(notdir $(wildcard $1/redis/*.lua)))

# make -n: print, run nothing, write nothing
DRY_RUN = $(findstring n,$(firstword -$(MAKEFLAGS)))

# rewritten (and then newer than objs/Makefile) only when its text changed
NGX_INPUTS_TEXT := $(call ngx_inputs,$(CURDIR))
ifneq ($(NGX_INPUTS_TEXT),$(strip $(file <$(NGX_INPUTS))))
$(NGX_INPUTS): FORCE
endif
$(NGX_INPUTS): | $(BUILD)
	$(if $(DRY_RUN),,$(file >$@,$(NGX_INPUTS_TEXT)))

# what util/configure.sh takes besides MODULE_DIR
CONFIGURE_ENV = NGINX_DIST='$(NGINX_DIST)' NGX_CC_OPT='$(NGX_CC_OPT)' \
    NGX_LD_OPT='$(NGX_LD_OPT)' MOD_CFLAGS='$(MOD_CFLAGS)'

$(NGX_MAKEFILE): $(NGX_INPUTS) config config.make util/configure.sh
	@$(CONFIGURE_ENV) MODULE_DIR='$(CURDIR)' flock $(BUILD)/.lock \
	    util/configure.sh $(NGX_TREE) $(BUILD)/configure.log

# "+" (run as a recursive make): the nginx make gets our jobserver (make -j);
# but make -n only prints (so no $(MAKE) in those lines: it alone would mark
# them recursive, to be run by make -n too)
SUBMAKE  = $(if $(DRY_RUN),,+)
MAKE_CMD = $(MAKE)

$(SO): $(NGX_MAKEFILE) $(MOD_SOURCES) $(LUA_SCRIPTS) util/embed-scripts.sh \
       util/build-module.sh
	@$(SUBMAKE)MAKE='$(MAKE_CMD)' flock $(BUILD)/.lock \
	    util/build-module.sh $(NGX_TREE) $@ $(NGINX)

build: $(SO)

$(BUILD):
	@mkdir -p $@

FORCE:


# --- tests ------------------------------------------------------------------

# sanitizers, valgrind, fuzzing (t/quality.mk); benchmarks (bench/bench.mk)
-include t/quality.mk
-include bench/bench.mk

ifneq ($(wildcard t/unit/unit.mk),)
include t/unit/unit.mk
else
unit:
	@echo "unit: no t/unit/unit.mk, no C unit tests"
endif

# one step after the other (also under make -j): deps may install what the
# build needs, the unit tests need the configured nginx sources
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory unit
	@# every crash input the fuzzers ever found, replayed (seconds, no fuzzing)
	@$(MAKE) --no-print-directory fuzz-regress
	@$(MAKE) --no-print-directory openapi-lint
	@# every answer the suite receives is recorded (t/openapi/README.md)
	rm -rf $(ANSWERS) && mkdir -p $(ANSWERS)
	SD_RECORD_DIR=$(ANSWERS) prove -I t/lib --timer $(PROVE_ARGS) t/
	@# the API suite once more, on a Redis Cluster (util/test-cluster.sh)
	@SD_RECORD_DIR=$(ANSWERS) PROVE_ARGS='$(PROVE_ARGS)' util/test-cluster.sh $(SO)
	@$(MAKE) --no-print-directory openapi-check

# the cluster pass alone (no answers recorded, no openapi-check)
test-cluster:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build
	@PROVE_ARGS='$(PROVE_ARGS)' util/test-cluster.sh $(SO)

# the TLS passes, one Redis then a cluster (util/test-tls.sh); not in `make
# test`, which must stay under 15 minutes: .ci/run runs it after
test-tls:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build
	@PROVE_ARGS='$(PROVE_ARGS)' util/test-tls.sh $(SO)


# --- openapi.yaml -----------------------------------------------------------

openapi-deps:
	@util/deps.sh $(NODE_PACKAGES)
	@util/node-deps.sh t/openapi $(NODE_DIR)

openapi-lint: openapi-deps
	@util/openapi-lint.sh $(NODE_DIR) openapi.yaml t/openapi/redocly.yaml

openapi-check: openapi-deps
	@util/openapi-check.sh $(NODE_DIR) $(ANSWERS)


# --- Debian package ---------------------------------------------------------

deb-deps:
	@$(MAKE) --no-print-directory deps
	@util/deps.sh $(PKG_PACKAGES) git:git

deb: deb-deps
	@util/deb-build.sh $(CURDIR) $(DEB_OUT)

test-deb: deb
	@util/test-deb.sh $(firstword $(wildcard $(DEB_OUT)/libnginx-mod-http-supportdesk_*_*.deb))


# --- run / stop -------------------------------------------------------------

run:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build
	@SRC_DIR='$(CURDIR)' VAR='$(VAR)' SO='$(SO)' NGINX_BIN='$(NGINX)' \
	    REDIS_SERVER='$(REDIS_SERVER)' REDIS_CLI='$(REDIS_CLI)' \
	    RUN_PORT='$(RUN_PORT)' REDIS_PORT='$(REDIS_PORT)' util/run.sh

stop:
	@VAR='$(VAR)' util/stop.sh

clean: stop
	rm -rf $(BUILD) $(VAR)
