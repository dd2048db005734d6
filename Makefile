# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed


.PHONY: demo test check fuzz bench bench-ingest bench-poll bench-scrape bench-summary bench-soak \
	bench-soak-long bench-cluster bench-caches clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/replywatch demo

test: $(STAMP)
	scripts/services
	$(BIN)/python -m pytest -q --durations=15

check: $(STAMP)
	scripts/check

# alerts/rules/*.yaml are generated from alerts/rules.py (names from the exporter's metric
# table); tests/alerts/test_rules.py fails until they are regenerated after a change.
.PHONY: rules
rules: $(STAMP)
	$(BIN)/python -m alerts.rules

# Every benchmark below but the soak and the cluster, one after another (never two at once:
# 2 cores), at the sizes their targets are set for: about ten minutes on 2 cores. Writes
# bench/RESULTS.md (date, commit, machine, one table of value, baseline, ratio, target, pass)
# and fails when any target is missed. `bench/all.py --quick` checks the plumbing in ~2 min.
bench: $(STAMP)
	$(BIN)/python bench/all.py

# The parts of `bench`, alone; each prints its report and fails when it misses a target.
# 5,000 fake Pages polled for 3 minutes against a bare aiohttp client (about 6.5 minutes).
bench-poll: $(STAMP)
	$(BIN)/python bench/poll.py

# The PDF summary of the busiest week of one million events (about 2 minutes alone).
bench-summary: $(STAMP)
	$(BIN)/python bench/summary.py

# One /metrics scrape at 100, 1,000 and 10,000 accounts (about 1.5 minutes).
bench-scrape: $(STAMP)
	$(BIN)/python bench/scrape.py

# What each long-lived in-memory structure of `replywatch run` holds at 5,000 and 10,000
# accounts (tracemalloc; about 1.5 minutes).
bench-caches: $(STAMP)
	$(BIN)/python bench/caches.py

# Import and stats of one million events against raw sqlite3 (about 1.5 minutes).
bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

# Not part of `bench`: 1, 2 and 3 workers against `replywatch run` on 10,000 accounts. Needs
# the local PostgreSQL; about 20 minutes on 2 cores.
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py

# Not part of `bench`: 2,000 accounts with 5% platform faults for 10 minutes (about 13 in all).
bench-soak: $(STAMP)
	$(BIN)/python bench/soak.py

# Not part of `bench`: the same soak for 60 minutes, 2,000 accounts (enough polls and faults
# for every criterion, as in `bench-soak`), memory from minute 3 against the last minute.
# About 65-70 minutes in all (estimated: the last round and the check of 6x the data of the
# 10-minute soak; not timed here).
bench-soak-long: $(STAMP)
	$(BIN)/python bench/soak.py --accounts 2000 --minutes 60

# 100,000 cases per intake parser and hostile-input target (CI runs 2,000). The delivery and
# CSV-file properties (test_hostile_delivery.py, test_hostile_files.py) run whole rounds and
# CLI imports per case; run them by hand with a smaller REPLYWATCH_FUZZ_EXAMPLES.
fuzz: $(STAMP)
	REPLYWATCH_FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest -q tests/reliability/test_fuzz_intake.py \
		tests/reliability/test_hostile_times.py tests/reliability/test_hostile_http.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
