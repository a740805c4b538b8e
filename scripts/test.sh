#!/usr/bin/env bash
# Installs what is missing, then runs every test: engine unit and integration tests (crash tests
# and interoperability tests with npm and PyPI servers included), then the official MCP client
# conformance suite, then the package test (builds the .deb, installs, runs and removes it).
# `cargo test --workspace` also builds the CLI and fixture binaries the tests drive.
. "$(dirname "$0")/common.sh"
"$ROOT/scripts/install-deps.sh" --test
SWITCHBOARD_INTEROP_DIR="$("$ROOT/scripts/install-interop.sh")"
export SWITCHBOARD_INTEROP_DIR
log "running the tests"
cargo test --workspace --locked "$@"
"$ROOT/scripts/conformance.sh"
"$ROOT/scripts/test-package.sh"
