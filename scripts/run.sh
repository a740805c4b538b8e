#!/usr/bin/env bash
# Installs what is missing, builds, and runs Switchboard: the tray app where there is a display;
# without one (a server, SSH, CI) it says so and runs the headless engine instead,
# `switchboard sync`, which keeps every connector connected and prints each change until Ctrl-C.
# Arguments go to the CLI (`./scripts/run.sh registry list`).
. "$(dirname "$0")/common.sh"
"$ROOT/scripts/install-deps.sh"
if [ $# -eq 0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  cargo build --release --locked -p switchboard-app
  exec "$CARGO_TARGET_DIR/release/switchboard-app"
fi
cargo build --release --locked --bin switchboard
if [ $# -eq 0 ]; then
  log "no display (DISPLAY and WAYLAND_DISPLAY are unset): running the headless engine, switchboard sync"
  set -- sync
fi
exec "$CARGO_TARGET_DIR/release/switchboard" "$@"
