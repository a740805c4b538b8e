#!/usr/bin/env bash
# The soak (issue 15): a daemon runs for MINUTES (default 30) while manifests churn, servers
# flap, connectors are toggled and tools called; prints its RSS, file descriptors and threads
# every 10 s, then the RSS slope after warm-up, and any orphan process. See scripts/soak.py.
. "$(dirname "$0")/common.sh"
minutes="${1:-30}"
log "building the CLI and the fixture (release)"
cargo build --release --locked -p switchboard -p switchboard-fixture --bins >&2
log "soaking for $minutes min"
exec python3 "$ROOT/scripts/soak.py" "$CARGO_TARGET_DIR/release/switchboard" \
  "$CARGO_TARGET_DIR/release/switchboard-fixture" "$minutes"
