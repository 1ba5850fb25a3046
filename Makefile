# ngx_http_supportdesk_module: build, test and local run.  `make help` lists
# the targets.  GNU make; the recipes are bash.

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
# The module's own warnings.  Not in --with-cc-opt: configure compiles its
# feature tests with it, and under -Wextra -Werror some of them fail
# (pwrite(), strerrordesc_np() "not found"), so ngx_auto_config.h would no
# longer describe the installed nginx.  `make modules` compiles only our
# sources: the flags are appended to objs/Makefile's CFLAGS after configure.
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
# $(NGX_INPUTS) is remade on every run but only rewritten when what
# configure depends on (besides `config` and the .lua files) changed: the
# nginx-dev version, the flags, the set of headers and scripts.  A new
# nginx-dev version also gets a fresh copy of its sources.  configure
# embeds redis/*.lua into objs/ngx_http_supportdesk_scripts.c, so editing a
# script re-runs configure; editing C sources only re-runs `make modules`.
#
# Several people (or make test and make run) may build in one checkout at
# the same time: each step that writes build/nginx-src holds build/.lock,
# or two configures mix their autotests and logs (seen: "C99 variadic
# macros ... found but is not working", then a .so that needs a function
# ngx_log_error, which nginx does not have, and cannot be loaded).

LOCKED := flock $(BUILD)/.lock bash -euo pipefail -c

define INPUTS_SCRIPT
if [ ! -f $(NGINX_DIST)/configure ] || [ ! -f $(NGINX_DIST)/conf_flags ]; then
    echo "$(NGINX_DIST) not found: install nginx-dev first (make deps)" >&2
    exit 1
fi
ver=$$(dpkg-query -W -f='$${Version}' nginx-dev 2>/dev/null || true)
[ -n "$$ver" ] || ver=$$(cat $(NGINX_DIST)/src/core/nginx.h $(NGINX_DIST)/conf_flags | sha256sum | cut -c1-16)
if [ ! -f $(NGX_TREE)/configure ] || [ "$$(cat $(BUILD)/nginx-src.version 2>/dev/null)" != "$$ver" ]; then
    echo "build: copying $(NGINX_DIST) (nginx-dev $$ver) to build/nginx-src"
    rm -rf $(NGX_TREE) $(BUILD)/nginx-src.version
    cp -a $(NGINX_DIST) $(NGX_TREE)
    echo "$$ver" > $(BUILD)/nginx-src.version
fi
{
    echo "nginx-dev $$ver"
    echo "cc-opt $(NGX_CC_OPT)"
    echo "ld-opt $(NGX_LD_OPT)"
    echo "module cflags $(MOD_CFLAGS)"
    cd $(CURDIR) && ls -1 $(MODULE)/*.h redis/*.lua 2>/dev/null || true
} > $(NGX_INPUTS).tmp
if cmp -s $(NGX_INPUTS).tmp $(NGX_INPUTS); then
    rm -f $(NGX_INPUTS).tmp
else
    mv -f $(NGX_INPUTS).tmp $(NGX_INPUTS)
fi
endef
export INPUTS_SCRIPT

# arguments: the prerequisites; a build that held the lock before us may
# have configured already
define CONFIGURE_SCRIPT
cd $(NGX_TREE)
if [ -f objs/Makefile ]; then
    fresh=1
    for f in "$$@"; do
        case $$f in /*) ;; *) f=$(CURDIR)/$$f ;; esac
        [ objs/Makefile -nt "$$f" ] || fresh=0
    done
    [ $$fresh = 0 ] || exit 0
fi
rm -f objs/Makefile
source ./conf_flags
echo "build: configuring nginx $$(cat $(BUILD)/nginx-src.version) + $(MODULE) (log: build/configure.log)"
if ! ./configure "$${NGX_CONF_FLAGS[@]}" \
        --add-dynamic-module=$(CURDIR) \
        --with-cc-opt='$(NGX_CC_OPT)' \
        --with-ld-opt='$(NGX_LD_OPT)' > $(BUILD)/configure.log 2>&1
then
    cat $(BUILD)/configure.log >&2
    rm -f objs/Makefile
    echo "build: nginx ./configure failed (log: build/configure.log)" >&2
    exit 1
fi
# the module's own warnings, for `make modules` only (see MOD_CFLAGS)
sed -i 's/^CFLAGS = .*/& $(MOD_CFLAGS)/' objs/Makefile
grep -a -E '^ \+ supportdesk|^   \+ ' $(BUILD)/configure.log || true
endef
export CONFIGURE_SCRIPT

# compile, then check that the installed nginx can load the result (dlopen
# resolves every symbol now, not at the first request) before it replaces
# build/$(MODULE).so: with install + mv, as a new inode, never overwriting
# the file in place, which a running nginx has mapped
define MODULES_SCRIPT
$(MAKE) -C $(NGX_TREE) -f objs/Makefile modules
install -m 0755 $(NGX_TREE)/objs/$(MODULE).so $(SO).tmp
mkdir -p $(BUILD)/loadcheck
printf 'pid %s/nginx.pid;\nload_module %s;\nevents {}\n' \
    $(BUILD)/loadcheck $(SO).tmp > $(BUILD)/loadcheck/nginx.conf
if ! out=$$($(NGINX) -p $(BUILD)/loadcheck/ -c $(BUILD)/loadcheck/nginx.conf -e stderr -t 2>&1); then
    echo "$$out" >&2
    rm -f $(SO).tmp
    echo "build: $(NGINX) cannot load the module" >&2
    exit 1
fi
mv -f $(SO).tmp $(SO)
echo "build: $(SO)"
endef
export MODULES_SCRIPT

$(NGX_INPUTS): FORCE
	@mkdir -p $(BUILD)
	@$(LOCKED) "$$INPUTS_SCRIPT"

$(NGX_MAKEFILE): $(NGX_INPUTS) config $(LUA_SCRIPTS)
	@$(LOCKED) "$$CONFIGURE_SCRIPT" configure $^

$(SO): $(NGX_MAKEFILE) $(MOD_SOURCES)
	@+$(LOCKED) "$$MODULES_SCRIPT"

build: $(SO)

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
