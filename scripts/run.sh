#!/usr/bin/env bash
# Installs what is missing, builds, and runs Switchboard: the tray app where there is a display;
# without one (a server, SSH, CI) it says so and runs the headless engine instead,
# `switchboard sync`, which keeps every connector connected and prints each change until Ctrl-C.
# Arguments go to the CLI (`./scripts/run.sh registry list`).
. "$(dirname "$0")/common.sh"
log "checking system packages (installs what is missing: WebKitGTK, AppIndicator, a Rust toolchain)"
"$ROOT/scripts/install-deps.sh"
# One cargo invocation builds the app and the CLI, so what they share is compiled once.
if [ -x "$CARGO_TARGET_DIR/release/switchboard-app" ] && [ -x "$CARGO_TARGET_DIR/release/switchboard" ]; then
  log "building Switchboard (release): reusing the last build, only what changed is compiled"
else
  log "building Switchboard (release, the app and the CLI in one build): the first time takes about 20 min on 2 cores (9 min here with the engine already built), later runs seconds ($CARGO_TARGET_DIR)"
fi
started=$SECONDS
cargo build --release --locked -p switchboard-app -p switchboard
log "built in $((SECONDS - started)) s"
CLI="$CARGO_TARGET_DIR/release/switchboard"
if ! command -v switchboard >/dev/null 2>&1; then
  log "the CLI is $CLI; to have \`switchboard\` on your PATH: ln -s '$CLI' ~/.local/bin/switchboard"
fi
if [ $# -eq 0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  log "starting the tray app"
  exec "$CARGO_TARGET_DIR/release/switchboard-app"
fi
if [ $# -eq 0 ]; then
  log "no display (DISPLAY and WAYLAND_DISPLAY are unset): running the headless engine, switchboard sync"
  set -- sync
fi
exec "$CLI" "$@"
