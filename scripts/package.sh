#!/usr/bin/env bash
# Builds Switchboard's Linux package: a .deb holding the tray app (`switchboard-app`, with its
# desktop entry and icons) and the CLI (`/usr/bin/switchboard`, on the PATH once installed).
# `--debug` builds the debug profile (what the package test installs: it shares the tests' build).
# Prints the .deb's path, and nothing else, on stdout. Install it with `sudo apt install ./<deb>`.
#
# No AppImage: Tauri's AppImage bundler downloads linuxdeploy and the AppImage runtime from
# GitHub at build time, and no package registry carries them.
. "$(dirname "$0")/common.sh"

"$ROOT/scripts/install-deps.sh" >&2

# The Tauri CLI from npm, pinned to the tauri crate's version in Cargo.lock.
TAURI_CLI_VERSION=2.12.5
profile=release
cargo_profile=(--release)
tauri_profile=()
if [ "${1:-}" = "--debug" ]; then
  profile=debug cargo_profile=() tauri_profile=(--debug)
fi

cli_root="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/tauri-cli"
tauri="$cli_root/node_modules/.bin/tauri"
if ! grep -q "\"version\": \"$TAURI_CLI_VERSION\"" "$cli_root/node_modules/@tauri-apps/cli/package.json" 2>/dev/null; then
  log "installing the Tauri CLI $TAURI_CLI_VERSION (npm @tauri-apps/cli)"
  npm install --prefix "$cli_root" --no-audit --no-fund --loglevel=error \
    "@tauri-apps/cli@$TAURI_CLI_VERSION" >&2
fi

log "building the CLI ($profile)"
cargo build "${cargo_profile[@]}" --locked -p switchboard --bin switchboard >&2
cli="$CARGO_TARGET_DIR/$profile/switchboard"

# The CLI's place in the package depends on where the build cache is, so it goes in a config
# merged over tauri.conf.json for this build only.
config="$(mktemp --suffix=.json)"
trap 'rm -f "$config"' EXIT
printf '{"bundle":{"active":true,"linux":{"deb":{"files":{"/usr/bin/switchboard":"%s"}}}}}\n' "$cli" >"$config"
log "building the app and its .deb ($profile; the first time about 10 min on 2 cores)"
(cd "$ROOT/src-tauri" && "$tauri" build "${tauri_profile[@]}" --ci --bundles deb --config "$config" >&2)

version="$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$ROOT/src-tauri/tauri.conf.json" | head -1)"
deb="$CARGO_TARGET_DIR/$profile/bundle/deb/Switchboard_${version}_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || { log "no package at $deb"; exit 1; }
echo "$deb"
