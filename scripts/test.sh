#!/usr/bin/env bash
# Installs what is missing, then runs every test: engine unit and integration tests (crash tests
# included). `cargo test` also builds the CLI binary the tests drive.
. "$(dirname "$0")/common.sh"
"$ROOT/scripts/install-deps.sh"
log "running the tests"
cargo test --workspace --locked "$@"
