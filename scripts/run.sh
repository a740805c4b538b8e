#!/usr/bin/env bash
# Installs what is missing, builds, and runs Switchboard. Until the tray app lands this is the
# headless engine: `switchboard sync`, keeping every connector of your registry (and manifest,
# with SWITCHBOARD_MANIFEST) connected until Ctrl-C. Other arguments are passed to the CLI.
. "$(dirname "$0")/common.sh"
"$ROOT/scripts/install-deps.sh"
cargo build --release --locked --bin switchboard
[ $# -gt 0 ] || set -- sync
exec "$CARGO_TARGET_DIR/release/switchboard" "$@"
