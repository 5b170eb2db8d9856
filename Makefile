# Two commands on a fresh machine:  make deploy   (a real local cluster)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest's "no tests collected" (exit 5) is not a failure
PYTEST  = $(BIN)/python -m pytest $(1); code=$$?; if [ $$code -eq 5 ]; then code=0; fi

.PHONY: deploy test test-fast lint status teardown prometheus browser
deploy: $(VENV)/.installed
	$(BIN)/python deploy_master.py --deploy --auto-approve

# everything: lint, unit tests, then integration tests on real clusters and servers (CI runs this)
test: lint prometheus browser
	@start=$$(date +%s); $(call PYTEST,); \
	  echo "make test: $$(( $$(date +%s) - start ))s"; exit $$code

# unit tests only (no Ray cluster, no server): seconds
test-fast: lint
	@$(call PYTEST,-m unit -q); exit $$code

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

# Debian's prometheus, for monitoring (and its tests): installed when missing and possible
# (root or sudo, apt); otherwise the monitoring tests are skipped and say why. Never started
# as a system service: raydeploy runs its own, on a loopback address. --no-install-recommends:
# the recommended node exporter would listen on every interface.
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
prometheus:
	@command -v prometheus >/dev/null 2>&1 || test -x /usr/bin/prometheus || { \
	  echo "prometheus missing: installing Debian's package"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
	  || { $(SUDO) apt-get update -q && \
	       $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; } \
	  || echo "could not install prometheus: the monitoring tests will be skipped"; }

# Debian's chromium, for the web inbox's browser tests (Playwright drives it; Playwright's own
# browser download is not used): installed when missing and possible, else the tests skip.
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  echo "chromium missing: installing Debian's package"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
	  || { $(SUDO) apt-get update -q && \
	       $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } \
	  || echo "could not install chromium (apt-get install chromium): the browser tests will be skipped"; }
