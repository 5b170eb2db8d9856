# Two commands on a fresh machine:  make deploy   (a real local cluster)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# pytest's "no tests collected" (exit 5) is not a failure
PYTEST  = $(BIN)/python -m pytest $(1); code=$$?; if [ $$code -eq 5 ]; then code=0; fi

.PHONY: deploy test test-fast test-lab lint status teardown prometheus browser sshd
deploy: $(VENV)/.installed
	$(BIN)/python deploy_master.py --deploy --auto-approve

# everything: lint, unit tests, then integration tests on real clusters and servers (CI runs this)
test: lint prometheus browser sshd
	@start=$$(date +%s); $(call PYTEST,); \
	  echo "make test: $$(( $$(date +%s) - start ))s"; exit $$code

# unit tests only (no Ray cluster, no server): seconds, on every core (pytest-xdist)
test-fast: lint
	@$(call PYTEST,-m unit -q -n auto); exit $$code

# the multi-host lab's tests (network namespaces as hosts: needs root, else they skip)
test-lab: $(VENV)/.installed sshd
	@$(call PYTEST,-m lab -q); exit $$code

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

# A Debian package when its command is missing and it can be installed (root or sudo, apt);
# otherwise the tests that need it skip and say why. $(1): package = command, $(2): for what.
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT = $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(1)
define DEBIAN_PACKAGE
	@command -v $(1) >/dev/null 2>&1 || test -x /usr/bin/$(1) || { \
	  echo "$(1) missing: installing Debian's package"; \
	  $(call APT,$(1)) || { $(SUDO) apt-get update -q && $(call APT,$(1)); } \
	  || echo "could not install $(1) (apt-get install $(1)): the $(2) tests will be skipped"; }
endef

# Prometheus: never started as a system service (raydeploy runs its own on a loopback
# address); --no-install-recommends: the recommended node exporter listens everywhere.
prometheus:
	$(call DEBIAN_PACKAGE,prometheus,monitoring)

# Chromium for the web inbox's browser tests (Playwright drives it; no browser download).
browser:
	$(call DEBIAN_PACKAGE,chromium,browser)

# OpenSSH's server, for the lab's SSH hosts (each runs its own sshd, on its lab address only).
# Installed with service starts refused (a policy-rc.d for the time of the install): no sshd
# is started on this machine.
sshd:
	@test -x /usr/sbin/sshd || { \
	  echo "sshd missing: installing Debian's openssh-server (no service started)"; \
	  guard=/usr/sbin/policy-rc.d; made=; \
	  if [ ! -e $$guard ]; then printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $$guard >/dev/null \
	    && $(SUDO) chmod 755 $$guard && made=1; fi; \
	  $(call APT,openssh-server) || { $(SUDO) apt-get update -q && $(call APT,openssh-server); } \
	    || echo "could not install openssh-server: the ssh platform's lab tests will fail"; \
	  if [ -n "$$made" ]; then $(SUDO) rm -f $$guard; fi; }
