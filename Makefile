# Two commands on a fresh machine:  make deploy   (a real local cluster)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: deploy test status teardown
deploy: $(VENV)/.installed
	$(BIN)/python deploy_master.py --deploy --auto-approve

test: $(VENV)/.installed
	$(BIN)/python -m pytest; code=$$?; if [ $$code -eq 5 ]; then exit 0; fi; exit $$code

status: $(VENV)/.installed
	$(BIN)/python deploy_master.py --status

teardown: $(VENV)/.installed
	$(BIN)/python deploy_master.py --teardown --auto-approve

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@
