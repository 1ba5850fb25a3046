# make bench / make bench-instr (included by the top Makefile:
# -include bench/bench.mk).  bench/README.md describes the method and every
# figure; results go to bench/results/ (git-ignored), the table for README to
# bench/results/latest.md.

# tool:Debian package, installed only when the tool is missing
BENCH_TOOLS := wrk:wrk valgrind:valgrind callgrind_control:valgrind perf:linux-perf \
               redis-benchmark:redis-tools

.PHONY: bench bench-instr bench-deps

define BENCH_DEPS_SCRIPT
missing=
for tp in $(BENCH_TOOLS); do
    command -v "$${tp%%:*}" >/dev/null 2>&1 || missing="$$missing $${tp#*:}"
done
[ -n "$$missing" ] || exit 0
missing=$$(printf '%s\n' $$missing | sort -u | tr '\n' ' ')
sudo=
[ "$$(id -u)" = 0 ] || sudo=sudo
echo "bench-deps: installing $$missing"
$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update
$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing
endef
export BENCH_DEPS_SCRIPT

bench-deps:
	@bash -euo pipefail -c "$$BENCH_DEPS_SCRIPT"

# one step after the other, also under make -j: the project's packages, the
# benchmark tools, the module (the top Makefile's build), then the run
bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/run

bench-instr:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/run --instr
