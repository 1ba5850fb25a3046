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

# what `make deps` installs (and .ci/run, through `make print-deps`)
DEB_PACKAGES := nginx-core nginx-dev libhiredis-dev libjansson-dev libssl-dev \
                libpcre2-dev zlib1g-dev libc6-dev redis-server redis-tools \
                libredis-perl libjson-pp-perl perl curl gcc make

# `make run`
NGINX       ?= /usr/sbin/nginx
REDIS_SERVER ?= redis-server
REDIS_CLI   ?= redis-cli
RUN_PORT    ?= 8080
REDIS_PORT  ?= 6390
RUN_NGINX_CONF := $(VAR)/nginx/nginx.conf

PROVE_ARGS  ?=


.PHONY: help build deps print-deps unit test run stop clean FORCE


define HELP_TEXT
Targets:
  make [build]   build build/$(MODULE).so against the installed nginx
                 (nginx-dev sources copied to build/nginx-src and configured
                 with the packaged nginx's own flags + this module)
  make deps      install the missing Debian packages (apt-get, sudo if not root):
                 $(DEB_PACKAGES)
  make test      deps + build + C unit tests (make unit) + prove -I t/lib t/
  make unit      C unit tests (t/unit/unit.mk), needs a configured build
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
	@echo $(DEB_PACKAGES)


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
	prove -I t/lib --timer $(PROVE_ARGS) t/


# --- run / stop -------------------------------------------------------------

define SH_HELPERS
# alive PIDFILE NAME: the pid in PIDFILE is a running NAME process
alive() {
    local pid
    [ -s "$$1" ] || return 1
    pid=$$(cat "$$1")
    kill -0 "$$pid" 2>/dev/null || return 1
    tr '\0' ' ' < /proc/$$pid/cmdline 2>/dev/null | grep -q -- "$$2"
}
# stop_pidfile PIDFILE NAME SIGNAL: signal, wait up to 15 s, then SIGKILL
stop_pidfile() {
    local pid i
    if ! alive "$$1" "$$2"; then
        rm -f "$$1"
        return 1
    fi
    pid=$$(cat "$$1")
    kill -"$$3" "$$pid"
    for i in $$(seq 150); do
        kill -0 "$$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$$pid" 2>/dev/null; then
        echo "$$2 (pid $$pid) did not exit in 15 s: SIGKILL" >&2
        kill -KILL "$$pid" 2>/dev/null || true
    fi
    rm -f "$$1"
}
redis_ping() {
    [ "$$($(REDIS_CLI) -h 127.0.0.1 -p $(REDIS_PORT) ping 2>/dev/null)" = PONG ]
}
# port_open PORT: something accepts connections on 127.0.0.1:PORT
port_open() {
    (exec 3<>/dev/tcp/127.0.0.1/$$1) 2>/dev/null
}
endef

define RUN_SCRIPT
$(SH_HELPERS)
mkdir -p $(VAR)/redis $(VAR)/nginx/logs $(VAR)/nginx/tmp

# redis: reuse the one a previous `make run` started
if alive $(VAR)/redis.pid redis-server; then
    for i in $$(seq 100); do redis_ping && break; sleep 0.1; done
    if ! redis_ping; then
        echo "run: redis-server (pid $$(cat $(VAR)/redis.pid)) does not answer on 127.0.0.1:$(REDIS_PORT)" >&2
        exit 1
    fi
    echo "run: redis-server already running (pid $$(cat $(VAR)/redis.pid))"
else
    if port_open $(REDIS_PORT); then
        echo "run: 127.0.0.1:$(REDIS_PORT) is in use (not by make run); stop that or pick REDIS_PORT=..." >&2
        exit 1
    fi
    $(REDIS_SERVER) $(CURDIR)/redis/redis.conf \
        --port $(REDIS_PORT) --bind 127.0.0.1 \
        --dir $(VAR)/redis --logfile $(VAR)/redis/redis.log \
        --pidfile $(VAR)/redis.pid --daemonize yes
    for i in $$(seq 100); do redis_ping && break; sleep 0.1; done
    if ! redis_ping; then
        tail -n 20 $(VAR)/redis/redis.log >&2 || true
        echo "run: redis-server did not come up on 127.0.0.1:$(REDIS_PORT)" >&2
        exit 1
    fi
    echo "run: redis-server started on 127.0.0.1:$(REDIS_PORT) (pid $$(cat $(VAR)/redis.pid))"
fi

# nginx: as root, nginx would run its workers as "nobody", who may be unable
# to reach var/ of this checkout (e.g. under /root) for temp files of request
# bodies; so when root, the workers keep the invoking identity, exactly like
# a non-root run, where nginx ignores "user" (and warns): the line is omitted
if [ "$$(id -u)" = 0 ]; then
    user_directive="user $$(id -un) $$(id -gn);"
else
    user_directive="# no \"user\": not started as root, workers run as $$(id -un)"
fi
sed -e "s|@USER_DIRECTIVE@|$$user_directive|" \
    -e "s|@MODULE_SO@|$(SO)|g" \
    -e "s|@PREFIX@|$(VAR)/nginx|g" \
    -e "s|@LISTEN@|127.0.0.1:$(RUN_PORT)|g" \
    -e "s|@REDIS@|127.0.0.1:$(REDIS_PORT)|g" \
    $(CURDIR)/conf/nginx-run.conf.in > $(RUN_NGINX_CONF).tmp
mv -f $(RUN_NGINX_CONF).tmp $(RUN_NGINX_CONF)
$(NGINX) -p $(VAR)/nginx/ -c $(RUN_NGINX_CONF) -e stderr -t -q
# restart rather than reload, so a rebuilt .so is loaded for sure
if stop_pidfile $(VAR)/nginx/nginx.pid nginx QUIT; then
    echo "run: stopped the previous nginx"
fi
if port_open $(RUN_PORT); then
    echo "run: 127.0.0.1:$(RUN_PORT) is in use (not by make run); stop that or pick RUN_PORT=..." >&2
    exit 1
fi
$(NGINX) -p $(VAR)/nginx/ -c $(RUN_NGINX_CONF) -e stderr
url=http://127.0.0.1:$(RUN_PORT)
for i in $$(seq 100); do
    code=$$(curl -s -o /dev/null -m 1 -w '%{http_code}' $$url/api/v1/ || true)
    [ "$$code" != 000 ] && [ -n "$$code" ] && break
    sleep 0.1
done
if [ "$$code" = 000 ] || [ -z "$$code" ]; then
    tail -n 20 $(VAR)/nginx/logs/error.log >&2 || true
    echo "run: nginx does not answer on $$url" >&2
    exit 1
fi
echo "run: nginx started on $$url (pid $$(cat $(VAR)/nginx/nginx.pid))"

# demo key: reuse the one of a previous run while redis still knows it
keyfile=$(VAR)/demo-api-key
key=
if [ -s $$keyfile ]; then
    key=$$(cat $$keyfile)
    hash=$$(printf '%s' "$$key" | sha256sum | cut -c1-64)
    app=$$($(REDIS_CLI) -h 127.0.0.1 -p $(REDIS_PORT) hget sd:apikey:$$hash app)
    [ "$$app" = demo ] || key=
fi
if [ -z "$$key" ]; then
    key=$$($(CURDIR)/redis/sd-key -h 127.0.0.1 -p $(REDIS_PORT) create demo "make run demo key")
    (umask 077 && printf '%s\n' "$$key" > $$keyfile)
fi

cat <<END

SupportDesk gateway is running
  API       $$url/api/v1/   (nginx: var/nginx/nginx.conf, logs in var/nginx/logs/)
  redis     127.0.0.1:$(REDIS_PORT)       (data and AOF in var/redis/)
  API key   $$key   (app "demo"; more keys: redis/sd-key -p $(REDIS_PORT) create <app>)

Try:
  curl -X PATCH $$url/api/v1/customers/user_42 -H "X-API-Key: $$key" -H "Content-Type: application/json" -d '{"email":"john@acme.com","name":"John Doe","phone":"+1 555 0100","metadata":{"plan":"premium","companyName":"Acme"}}'
  curl $$url/api/v1/customers/user_42 -H "X-API-Key: $$key"

Stop with: make stop
END
endef
export RUN_SCRIPT

define STOP_SCRIPT
$(SH_HELPERS)
if stop_pidfile $(VAR)/nginx/nginx.pid nginx QUIT; then
    echo "stop: nginx stopped"
else
    echo "stop: nginx was not running"
fi
if stop_pidfile $(VAR)/redis.pid redis-server TERM; then
    echo "stop: redis-server stopped"
else
    echo "stop: redis-server was not running"
fi
endef
export STOP_SCRIPT

run:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build
	@bash -euo pipefail -c "$$RUN_SCRIPT"

stop:
	@bash -euo pipefail -c "$$STOP_SCRIPT"

clean: stop
	rm -rf $(BUILD) $(VAR)
