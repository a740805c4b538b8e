#!/usr/bin/env bash
# Installs what building and testing Switchboard needs and is missing: Debian/Ubuntu packages
# (as root, or through sudo) and a Rust toolchain new enough for the workspace; with --test, also
# what the app's end-to-end tests need (Xvfb, WebKitWebDriver, tauri-driver). Idempotent and quick
# when everything is already there.
. "$(dirname "$0")/common.sh"

# The tray app (Tauri 2) links WebKitGTK 4.1 and the AppIndicator tray library. librsvg2-dev and
# libxdo-dev, also on Tauri's list, are left out: nothing in this build links them (ldd).
# dbus-x11 gives GTK `dbus-launch`, to start a session bus where an X display has none (Xvfb,
# a bare X session), instead of warning that it is missing.
APT_PACKAGES=(build-essential pkg-config ca-certificates curl libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev dbus-x11)
# The e2e tests: a private X server, WebKit's WebDriver, a private session bus for the tray; the
# package test finds the installed app's window with xwininfo (x11-utils).
[ "${1:-}" = "--test" ] && APT_PACKAGES+=(xvfb xauth x11-utils webkit2gtk-driver dbus-daemon dbus-session-bus-common)
# The interoperability tests run npm and PyPI MCP servers; keep a Node or Python that is
# already installed (nodesource, pyenv) rather than adding Debian's beside it.
command -v node >/dev/null && command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)
command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || APT_PACKAGES+=(python3 python3-venv)
MIN_RUST_MINOR=88

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing system packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

rust_minor() { rustc --version 2>/dev/null | sed -E 's/^rustc 1\.([0-9]+).*/\1/'; }
if ! command -v cargo >/dev/null || [ "$(rust_minor || echo 0)" -lt "$MIN_RUST_MINOR" ]; then
  if command -v rustup >/dev/null; then
    log "updating the Rust toolchain with rustup"
    rustup toolchain install stable --profile minimal -c rustfmt -c clippy
    rustup default stable
  else
    log "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy
    . "$HOME/.cargo/env"
  fi
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
    rustup component add "$component"
  fi
done

# The WebDriver server the app's end-to-end tests talk to; it drives WebKitWebDriver.
TAURI_DRIVER_VERSION=2.1.0
if [ "${1:-}" = "--test" ]; then
  driver_root="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/tauri-driver"
  if ! cargo install --list --root "$driver_root" | grep -q "^tauri-driver v$TAURI_DRIVER_VERSION:"; then
    log "installing tauri-driver $TAURI_DRIVER_VERSION"
    cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked --root "$driver_root"
  fi
fi
