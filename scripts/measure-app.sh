#!/usr/bin/env bash
# Builds the release app, CLI and fixtures, then measures the app with scripts/measure-app.py
# (launch to tray ready; CPU and summed PSS with 20 healthy connectors: window closed, open, and
# opened then closed) under a private Xvfb display and session bus. The README's figures come
# from this. Arguments go to the script.
. "$(dirname "$0")/common.sh"
"$ROOT/scripts/install-deps.sh" --test
cargo build --release --locked -p switchboard-app -p switchboard-fixture --bin switchboard-app \
  --bin switchboard-fixture --bin switchboard-tray-watcher
cargo build --release --locked --bin switchboard
R="$CARGO_TARGET_DIR/release"
# A private session bus with a stand-in tray host: the app runs as on a desktop with a tray.
exec dbus-run-session -- xvfb-run -a python3 "$ROOT/scripts/measure-app.py" "$R/switchboard-app" \
  "$R/switchboard" "$R/switchboard-fixture" --tray-watcher "$R/switchboard-tray-watcher" "$@"
