# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
FLASK  := $(BIN)/flask --app patrons

.PHONY: run test install migrate seed bench lint browser-deps clean

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
	$(FLASK) seed-demo

run: seed
	@echo "Serving http://127.0.0.1:$(PORT) (staff: staff@example.org / demo-staff-password)"
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

# axe-core for the accessibility check in the browser tests (skipped without npm)
tests/browser/node_modules/axe-core/axe.min.js: tests/browser/package.json
	@if command -v npm >/dev/null 2>&1; then cd tests/browser && npm install --silent --no-audit --no-fund; \
	else echo "npm not found: the accessibility check will be skipped"; fi

browser-deps: tests/browser/node_modules/axe-core/axe.min.js

test: install browser-deps
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# every bench/*.py with a main(), or some: `make bench BENCH=article` (needs wrk)
bench: install
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) tests/browser/node_modules
