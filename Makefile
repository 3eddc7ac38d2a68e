# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
# every absolute link the app writes (mails, canonical and share links, the feed) starts here;
# `make run` passes it to the server, the workers and the demo, so PORT=5077 links to 5077
SITE_URL ?= http://127.0.0.1:$(PORT)
FLASK  := $(BIN)/flask --app patrons
APP    := SITE_URL='$(SITE_URL)'

.PHONY: run test coverage install migrate seed bench lint browser-deps clean translations

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml requirements.lock
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/alembic upgrade head

seed: migrate
	$(APP) $(FLASK) seed-demo

# Without STRIPE_SECRET_KEY in the environment, `make run` starts the offline Stripe
# (localstripe through patrons/fakestripe, loopback only, state in instance/) beside the server
# and points the app at it; with real keys set, it starts no emulator. Either way it starts
# `flask worker` beside the server: mail, the stored webhook events the server's own
# background thread did not apply, voting rounds closing, nightly sync-stripe, the reports
# rollup and the purges (log: instance/worker.log).
STRIPE_PORT ?= 8420
OFFLINE_STRIPE := STRIPE_SECRET_KEY=sk_test_offline STRIPE_PUBLISHABLE_KEY=pk_test_offline \
	STRIPE_WEBHOOK_SECRET=whsec_offline STRIPE_API_BASE=http://127.0.0.1:$(STRIPE_PORT)

run: seed
	@echo "Serving http://127.0.0.1:$(PORT), links to $(SITE_URL) (staff: staff@example.org / demo-staff-password)"
	@mkdir -p instance; \
	if [ -n "$$STRIPE_SECRET_KEY" ]; then \
		$(APP) $(FLASK) worker > instance/worker.log 2>&1 & worker=$$!; \
		trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(APP) $(FLASK) run --host 127.0.0.1 --port $(PORT); exit; \
	fi; \
	$(BIN)/python -m patrons.fakestripe --port $(STRIPE_PORT) \
		--persist instance/localstripe.pickle --webhook-secret whsec_offline \
		--webhook-url http://127.0.0.1:$(PORT)/stripe/webhook > instance/fakestripe.log 2>&1 & \
	fake=$$!; \
	$(APP) $(OFFLINE_STRIPE) $(FLASK) worker > instance/worker.log 2>&1 & worker=$$!; \
	trap 'kill $$fake $$worker 2>/dev/null' EXIT INT TERM; \
	echo "Offline Stripe at http://127.0.0.1:$(STRIPE_PORT) (log: instance/fakestripe.log)"; \
	$(APP) $(OFFLINE_STRIPE) $(FLASK) run --host 127.0.0.1 --port $(PORT)

# axe-core for the accessibility check in the browser tests (skipped without npm)
tests/browser/node_modules/axe-core/axe.min.js: tests/browser/package.json
	@if command -v npm >/dev/null 2>&1; then cd tests/browser && npm install --silent --no-audit --no-fund; \
	else echo "npm not found: the accessibility check will be skipped"; fi

browser-deps: tests/browser/node_modules/axe-core/axe.min.js

# The suite on every core (pytest-xdist, a database per worker: tests/conftest.py), the
# fifteen slowest tests named at the end. On 2 cores -n 2, 3 and 4 took the same ~2.5 min and
# 2 (auto) the least CPU. PYTEST_ARGS for more, e.g. PYTEST_ARGS="-m 'not slow'" (leaves out
# fuzzing and browser tests) or "-x tests/accounts"; HYPOTHESIS_PROFILE=ci for the larger
# property and fuzz runs (.ci/run sets it; tests/conftest.py).
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

test: install browser-deps
	$(PYTEST) $(PYTEST_ARGS)

# the same run, measuring which lines of patrons/ it reached
coverage: install browser-deps
	$(PYTEST) --cov=patrons --cov-report=term $(PYTEST_ARGS)

# the checks every change passes (CONTRIBUTING.md): style and bugs (ruff), types (mypy --strict,
# configured in pyproject.toml), and the layers of docs/architecture.md (import-linter)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# every bench/*.py with a main(), or some: `make bench BENCH=article` (needs wrk)
bench: install
	$(BIN)/python -m bench $(BENCH)

# re-extract every translatable string, refresh the English catalogue (msgstr = msgid) and
# compile it; --ignore-dirs replaces pybabel's default, which would skip templates/_partials
TRANSLATIONS := patrons/translations
translations: install
	$(BIN)/pybabel -q extract -F $(TRANSLATIONS)/babel.cfg -k _l --sort-output --project=patrons \
		--ignore-dirs=".* __pycache__ node_modules instance" -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/python $(TRANSLATIONS)/fill_english.py
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

clean:
	rm -rf $(VENV) tests/browser/node_modules
