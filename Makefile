# secalert.alerting: one command sets up this machine and runs every check.
#
#   make test        setup; then side by side: the checks (lint, docs lint, unit tests and
#                    sanity on every supported ansible-core, collection build) and every
#                    scenario on the newest stable core (in parallel lanes), and fleet
#                    also on the oldest
#   make checks      the checks alone
#   make setup       host packages, one venv per core, podman collection, base images
#   make lint | docs | sanity | units | build | molecule | molecule-<scenario>
#                    run on the newest stable core; CORE=2.20 (units, sanity,
#                    molecule-<scenario>) picks another supported one
#   make demo        a fleet in containers, rolled out with site.yml, real events, alerts
#   make demo-clean  remove the demo fleet
#   make bench-fleet rollout time by fleet size, end-to-end alert latency
#   make bench-sudo  latency of sudo with no, an empty, our and the talk's plugin; what
#                    following subcommands adds per subcommand; what session rules cost
#                    (throughput through a pty and a pipe, keystroke echo)
#   make bench-syslog-ng  a storm of 10,000 alerts through syslog-ng; ordinary traffic
#   make clean       remove test containers, networks and the build tarball
#
# Caches (venvs, images, wheels, collections) live in .cache/ (ignored by git).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE := $(TOP)/.cache
STAGE := $(TOP)/tests/harness/stage

# Supported ansible-core releases: one venv each (.cache/venvs/core-X.Y, built by setup
# from tests/requirements-core-X.Y.txt on a controller Python that core supports).
# 2.22 is tested at its release candidate (tests/requirements-core-2.22.txt).
CORES := $(sort $(patsubst tests/requirements-core-%.txt,%,$(wildcard tests/requirements-core-*.txt)))
# The newest stable core: lint, docs, build and every scenario run on it.
TOOLS_CORE := 2.21
# The oldest supported core also runs fleet (all three roles, both Debians), without
# pipelining: the way 2.20 and 2.21 run by default.
OLDEST_CORE := $(firstword $(CORES))
CORE ?= $(TOOLS_CORE)
ifeq ($(filter $(CORE),$(CORES)),)
$(error CORE=$(CORE) is not one of the supported cores: $(CORES))
endif
VENV := $(CACHE)/venvs/core-$(CORE)

export TOOLS_CORE
export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(TOP)/tests/harness/containers.conf
export ANSIBLE_HOME := $(CACHE)/ansible-home
# secalert.alerting (a symlink to this checkout) and containers.podman from the ansible
# community package of that version (tests/harness/setup).
export ANSIBLE_PACKAGE := 14.5.0
export ANSIBLE_COLLECTIONS_PATH := $(CACHE)/collections-ansible-$(ANSIBLE_PACKAGE)
export ANSIBLE_LOCAL_TEMP := $(CACHE)/ansible-home/tmp
# The scenarios reach their containers through runc exec (tests/harness/connection_plugins/
# podman_runc.py): a podman exec costs two podman processes and a conmon besides runc.
export ANSIBLE_CONNECTION_PLUGINS := $(TOP)/tests/harness/connection_plugins
export MOLECULE_GLOB := molecule/*/molecule.yml
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The scenarios run with pipelining (the default of ansible-core 2.22; containers.podman
# 1.21 pipelines through podman exec -i): one podman exec per task instead of five.
# PIPELINING=False runs them the way 2.20 and 2.21 do by default.
PIPELINING ?= True
export ANSIBLE_PIPELINING := $(PIPELINING)

# make test runs the scenarios in lanes side by side (tests/harness/lanes): a scenario mostly
# waits for alerts (windows, rate limits, silence bounds). Every scenario is in a lane;
# fleet on the oldest core has names of its own (run_of, below), so it runs beside fleet,
# after apprise: by then fleet has put the sudo plugins it built in the shared cache.
MOLECULE_LANES ?= "fleet" "sudo_alerts" "apprise fleet@$(OLDEST_CORE):False" \
  "syslog_ng_relay syslog_ng_standalone"

SCENARIOS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard molecule/*/molecule.yml)))))

.PHONY: test checks setup lint docs sanity units build molecule clean demo demo-clean bench-fleet bench-syslog-ng bench-sudo $(addprefix molecule-,$(SCENARIOS))

# After setup, the checks (one process at a time: about one core) run beside the Molecule
# lanes (which wait for alerts much of the time): their output is in .cache/checks.log,
# printed when they end; a failed check fails make test once the lanes are done too.
test:
	@mkdir -p $(CACHE); rm -f $(CACHE)/stages $(CACHE)/figures $(CACHE)/failed; date +%s >$(CACHE)/started
	@$(STAGE) setup $(MAKE) --no-print-directory setup
	@rc=0; STAGE_NO_SUMMARY=1 $(MAKE) --no-print-directory checks >$(CACHE)/checks.log 2>&1 & checks=$$!; \
	  tests/harness/lanes $(MOLECULE_LANES) || rc=$$?; \
	  if wait $$checks; then echo "== checks passed (.cache/checks.log)"; \
	  else rc=1; echo "== checks FAILED; the end of .cache/checks.log:"; tail -n 40 $(CACHE)/checks.log; fi; \
	  $(STAGE) --summary; exit $$rc

# lint, docs, units and sanity on every supported core, the collection build: one after
# the other, stopping at the first failure.
checks:
	@$(STAGE) lint@$(TOOLS_CORE) $(MAKE) --no-print-directory lint
	@$(STAGE) docs@$(TOOLS_CORE) $(MAKE) --no-print-directory docs
	@for c in $(CORES); do $(STAGE) units@$$c $(MAKE) --no-print-directory units CORE=$$c || exit 1; done
	@for c in $(CORES); do $(STAGE) sanity@$$c $(MAKE) --no-print-directory sanity CORE=$$c || exit 1; done
	@$(STAGE) build@$(TOOLS_CORE) $(MAKE) --no-print-directory build

setup:
	tests/harness/setup

lint:
	yamllint --strict .
	ruff check .
	ANSIBLE_VAULT_IDENTITY_LIST=demo@$(TOP)/demo/vault-password.txt ansible-lint

# The collection's docs (module, roles' argument specs, extra docs) as the docsite
# would render them, from a copy of what a commit ships.
docs:
	ANSIBLE_COLLECTIONS_PATH=$(CACHE)/docs antsibull-docs lint-collection-docs --plugin-docs \
	  "$$(tests/harness/tree $(CACHE)/docs)"

units:
	pytest -p no:cacheprovider tests/unit

sanity:
	tests/harness/sanity

build:
	tests/harness/galaxy-check

molecule: $(addprefix molecule-,$(SCENARIOS))

# Molecule destroys the scenario after a failure; the trap also cleans up after Ctrl-C.
# The output is kept in .cache/molecule-<scenario>@<core>.log (its step lines timed by
# tests/harness/stamp, each playbook's ten slowest tasks at its end: the harness's
# task_times callback); a deprecation warning in it
# fails the scenario. MOLECULE_LOCK=1 waits for /tmp/secalert-molecule-<scenario>.lock
# (machines where several people run the same scenarios).
#
# A run on the newest stable core uses the scenario's own names (secalert-<scenario>-*);
# a run on another core is "<scenario>-core<X_Y>": its containers, network, receiver and
# Molecule state carry that name (molecule/shared/create.yml), so fleet on two cores can
# run side by side. Inventory names (and the TLS certificates made for them) stay.
# (No dot in it: a container name is also an alias in the container's /etc/hosts, and
# Python's getfqdn() takes the first name with a dot for the host's own name.)
run_of = $(if $(filter $(CORE),$(TOOLS_CORE)),$(1),$(1)-core$(subst .,_,$(CORE)))
$(addprefix molecule-,$(SCENARIOS)): molecule-%:
	@[ -x $(VENV)/bin/molecule ] || { echo "ansible-core $(CORE)'s venv has no Molecule (tests/requirements-core-$(CORE).txt)" >&2; exit 2; }
	trap 'tests/harness/cleanup $(call run_of,$*); exit 130' INT TERM; \
	SECALERT_RUN=$(call run_of,$*) \
	$(if $(filter $(CORE),$(TOOLS_CORE)),,MOLECULE_EPHEMERAL_DIRECTORY=$(CACHE)/molecule-state/$(call run_of,$*)) \
	ANSIBLE_CALLBACK_PLUGINS=$(TOP)/tests/harness/callback_plugins ANSIBLE_CALLBACKS_ENABLED=task_times \
	  $(if $(MOLECULE_LOCK),flock /tmp/secalert-molecule-$(call run_of,$*).lock) molecule test -s $* 2>&1 | tests/harness/stamp | tee $(CACHE)/molecule-$*@$(CORE).log || { tests/harness/cleanup $(call run_of,$*); exit 1; }; \
	tests/harness/no-deprecations $(CACHE)/molecule-$*@$(CORE).log

demo:
	demo/run

demo-clean:
	demo/clean

# Benchmarks print figures; they are not part of make test.
bench-fleet: setup
	python3 benchmarks/fleet_rollout.py

bench-sudo: setup
	trap 'molecule destroy -s sudo_alerts >/dev/null' EXIT; \
	molecule converge -s sudo_alerts >/dev/null && \
	python3 benchmarks/sudo_latency.py && \
	python3 benchmarks/sudo_subcommands.py && \
	python3 benchmarks/sudo_session.py

bench-syslog-ng: setup
	trap 'molecule destroy -s syslog_ng_standalone >/dev/null' EXIT; \
	molecule converge -s syslog_ng_standalone >/dev/null && \
	python3 benchmarks/syslog_ng_storm.py

clean:
	tests/harness/cleanup
	rm -f secalert-alerting-*.tar.gz
