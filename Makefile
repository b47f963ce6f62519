# Two entry points on a fresh Debian machine:
#   make run   installs what is missing, then serves the Locklock API (locklock dev)
#   make test  installs what is missing, then runs every test against real redis-server processes
SHELL := /bin/bash
APT_PACKAGES := libhiredis-dev libsqlite3-dev redis-server redis-tools wrk libfaketime libtcmalloc-minimal4 curl python3 python3-venv
SWIFT ?= swift
EXAMPLES := ExactlyOnce URLShortener

.PHONY: run test lint docs chaos deps build clean-test-servers

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

test: deps lint
	$(SWIFT) build --build-tests
	@# Plain `swift test`: suites that start real servers take turns (the .realRedisServers trait).
	@trap '$(MAKE) --no-print-directory clean-test-servers' EXIT; $(SWIFT) test
	scripts/docs.sh
	@# Each example is a package of its own; sharing the build folder reuses every module already built.
	@for example in $(EXAMPLES); do \
	  $(SWIFT) build --build-tests --package-path Examples/$$example --scratch-path $(CURDIR)/.build && \
	  $(SWIFT) test --skip-build --package-path Examples/$$example --scratch-path $(CURDIR)/.build || exit 1; \
	done
	scripts/api-conformance.sh
	@# The fault-injection suite, short form (about 2.5 minutes): exits 1 if any scenario fails.
	@trap '$(MAKE) --no-print-directory clean-test-servers' EXIT; $$($(SWIFT) build --show-bin-path)/locklock-chaos run --form short

# Layout (.swift-format) and each target's imports against what Package.swift declares.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Examples Package.swift
	$(SWIFT) package dump-package | scripts/check-imports.py
	@for example in $(EXAMPLES) LocalMasters; do \
	  (cd Examples/$$example && $(SWIFT) package dump-package | ../../scripts/check-imports.py .) || exit 1; \
	done

# The Redlock DocC catalog, warnings as errors (a broken symbol link fails): .build/docs.
docs:
	scripts/docs.sh

# The fault-injection suite, long form (several times longer phases; about 12 minutes).
chaos: deps
	@# The run-wrapper scenario starts the locklock next to the suite.
	$(SWIFT) build -c release --product locklock-chaos && $(SWIFT) build -c release --product locklock
	@trap '$(MAKE) --no-print-directory clean-test-servers' EXIT; $$($(SWIFT) build -c release --show-bin-path)/locklock-chaos run --form long

run: deps
	$(SWIFT) build -c release --product locklock
	$$($(SWIFT) build -c release --show-bin-path)/locklock dev

# Test servers are killed by the tests themselves; this catches any left by a crashed run:
# the servers whose pids the test support recorded, and only while they still run in a test
# server's directory (redis-server changes into its --dir).
TEST_PIDS := $${TMPDIR:-/tmp}/locklock-test-servers
clean-test-servers:
	@for file in $(TEST_PIDS)/*; do \
	  [ -e "$$file" ] || continue; pid=$$(basename "$$file"); \
	  if readlink /proc/$$pid/cwd 2>/dev/null | grep -q 'locklock-test-redis'; then kill -CONT $$pid; kill -9 $$pid; fi; \
	  rm -f "$$file"; \
	done
