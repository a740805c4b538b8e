#!/usr/bin/env bash
# Installs what is missing, builds, and runs Switchboard. Until the tray app lands this is the
# headless engine's CLI; arguments are passed through (default: `registry list`).
. "$(dirname "$0")/common.sh"
"$ROOT/scripts/install-deps.sh"
cargo build --release --locked --bin switchboard
[ $# -gt 0 ] || set -- registry list
exec "$CARGO_TARGET_DIR/release/switchboard" "$@"
