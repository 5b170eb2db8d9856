# Two commands on a fresh machine:  make deploy   (a real local cluster)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest's "no tests collected" (exit 5) is not a failure
PYTEST  = $(BIN)/python -m pytest $(1); code=$$?; if [ $$code -eq 5 ]; then exit 0; fi; exit $$code

.PHONY: deploy test test-fast lint status teardown
deploy: $(VENV)/.installed
	$(BIN)/python deploy_master.py --deploy --auto-approve

# everything: lint, unit tests, then integration tests on real clusters and servers (CI runs this)
test: lint
	@start=$$(date +%s); $(call PYTEST,); code=$$?; \
	  echo "make test: $$(( $$(date +%s) - start ))s"; exit $$code

# unit tests only (no Ray cluster, no server): seconds
test-fast: lint
	$(call PYTEST,-m unit -q)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

status: $(VENV)/.installed
	$(BIN)/python deploy_master.py --status

teardown: $(VENV)/.installed
	$(BIN)/python deploy_master.py --teardown --auto-approve

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@
