# make bench / make bench-instr (included by the top Makefile:
# -include bench/bench.mk).  bench/README.md describes the method and every
# figure; results go to bench/results/ (git-ignored), the table for README to
# bench/results/latest.md.

# tool:Debian package, installed only when the tool is missing
BENCH_TOOLS := wrk:wrk valgrind:valgrind callgrind_control:valgrind perf:linux-perf \
               redis-benchmark:redis-tools

.PHONY: bench bench-instr bench-deps

bench-deps:
	@util/deps.sh $(BENCH_TOOLS)

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
