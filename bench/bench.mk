# make bench / make bench-instr / make bench-cluster / make bench-profile (included by the top Makefile:
# -include bench/bench.mk).  bench/README.md describes the method and every
# figure; results go to bench/results/ (git-ignored), the table for README to
# bench/results/latest.md.

# tool:Debian package, installed only when the tool is missing
BENCH_TOOLS := wrk:wrk valgrind:valgrind callgrind_control:valgrind perf:linux-perf \
               redis-benchmark:redis-tools

.PHONY: bench bench-instr bench-deps bench-feed bench-cluster bench-profile \
        bench-redis-instr bench-peer

# make bench-feed: the module as it was before the change feed (main before
# "Merge branch 'feed'"), to compare the feed's cost with
BENCH_BASE_COMMIT ?= 5911c43
BENCH_BASE_SO     := $(BUILD)/base/$(MODULE).so

bench-deps:
	@util/deps.sh $(BENCH_TOOLS)

# one step after the other, also under make -j: the project's packages, the
# benchmark tools, the module (the top Makefile's build), then the run
bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/run

# make bench, plus upsert-update and get against the base module in the same
# run (BENCH_BASE_MODULE); the base is built by bench/base-module.sh in a
# temporary git worktree under build/base/ (its own make build)
bench-feed:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/base-module.sh $(BENCH_BASE_COMMIT) $(BENCH_BASE_SO)
	@BENCH_BASE_MODULE=$(BENCH_BASE_SO) bench/run

bench-instr:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/run --instr

# redis-server's instructions per write script call, the checkout's redis/
# against git revision BENCH_REDIS_REV's (bench/redis-instr.sh)
BENCH_REDIS_REV ?= HEAD
bench-redis-instr:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@bench/redis-instr.sh $(BENCH_REDIS_REV)

# the workloads on a 3-master Redis Cluster beside one Redis, in one run
# (bench/run --cluster: bench/cluster.sh); results in bench/results/cluster.md
bench-cluster:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/run --cluster

# where the worker's CPU goes, module against the return 200 ceiling, by
# object under perf (bench/run --profile: bench/profile.sh); results in
# bench/results/profile.md
bench-profile:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory build
	@bench/run --profile

# the module against its Node.js peer (Fastify + ioredis) on the same
# redis-server (bench/run --peer: bench/peer.sh); Node.js and npm as for
# make openapi-lint (util/deps.sh), the peer's packages pinned by
# bench/peer/package-lock.json in build/peer; results in
# bench/results/peer.md
bench-peer:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory bench-deps
	@util/deps.sh $(NODE_PACKAGES)
	@util/node-deps.sh bench/peer $(BUILD)/peer
	@$(MAKE) --no-print-directory build
	@BENCH_PEER_MODULES=$(BUILD)/peer/node_modules bench/run --peer
