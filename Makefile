# secalert.alerting: one command sets up this machine and runs every check.
#
#   make test        setup, lint, sanity, unit tests, collection build, every scenario
#   make setup       host packages, tool venv, podman collection, base images
#   make lint | sanity | units | build | molecule | molecule-<scenario>
#   make demo        a fleet in containers, rolled out with site.yml, real events, alerts
#   make demo-clean  remove the demo fleet
#   make bench-fleet rollout time by fleet size, end-to-end alert latency
#   make bench-sudo  latency of sudo with no, an empty, our and the talk's plugin
#   make bench-syslog-ng  a storm of 10,000 alerts through syslog-ng; ordinary traffic
#   make clean       remove test containers, networks and the build tarball
#
# Caches (venv, images, wheels, collections) live in .cache/ (ignored by git).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE := $(TOP)/.cache
VENV := $(CACHE)/venv
STAGE := $(TOP)/tests/harness/stage

export PATH := $(VENV)/bin:$(PATH)
export CONTAINERS_CONF := $(TOP)/tests/harness/containers.conf
export ANSIBLE_HOME := $(CACHE)/ansible-home
export ANSIBLE_COLLECTIONS_PATH := $(CACHE)/collections
export ANSIBLE_LOCAL_TEMP := $(CACHE)/ansible-home/tmp
export MOLECULE_GLOB := molecule/*/molecule.yml
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SCENARIOS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard molecule/*/molecule.yml)))))

.PHONY: test setup lint sanity units build molecule clean demo demo-clean bench-fleet bench-syslog-ng bench-sudo $(addprefix molecule-,$(SCENARIOS))

test:
	@rm -f $(CACHE)/stages
	@$(STAGE) setup $(MAKE) --no-print-directory setup
	@$(STAGE) lint $(MAKE) --no-print-directory lint
	@$(STAGE) units $(MAKE) --no-print-directory units
	@$(STAGE) sanity $(MAKE) --no-print-directory sanity
	@$(STAGE) build $(MAKE) --no-print-directory build
	@for s in $(SCENARIOS); do $(STAGE) molecule-$$s $(MAKE) --no-print-directory molecule-$$s || exit 1; done
	@$(STAGE) --summary

setup:
	tests/harness/setup

lint:
	yamllint --strict .
	ruff check .
	ANSIBLE_VAULT_IDENTITY_LIST=demo@$(TOP)/demo/vault-password.txt ansible-lint

units:
	pytest -p no:cacheprovider tests/unit

sanity:
	tests/harness/sanity

build:
	tests/harness/galaxy-check

molecule: $(addprefix molecule-,$(SCENARIOS))

# Molecule destroys the scenario after a failure; the trap also cleans up after Ctrl-C.
$(addprefix molecule-,$(SCENARIOS)): molecule-%:
	trap 'tests/harness/cleanup $*; exit 130' INT TERM; \
	molecule test -s $* || { tests/harness/cleanup $*; exit 1; }

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
	python3 benchmarks/sudo_latency.py

bench-syslog-ng: setup
	trap 'molecule destroy -s syslog_ng_standalone >/dev/null' EXIT; \
	molecule converge -s syslog_ng_standalone >/dev/null && \
	python3 benchmarks/syslog_ng_storm.py

clean:
	tests/harness/cleanup
	rm -f secalert-alerting-*.tar.gz
