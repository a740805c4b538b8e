#!/usr/bin/env bash
# The package test: builds the .deb (debug profile, sharing the tests' build), installs it with
# dpkg, checks the CLI is on the PATH and the desktop entry is there, starts the installed app
# under a private X server until its window shows, then removes the package and checks nothing
# of it is left. Needs root (or sudo) for dpkg. Leaves an installed `switchboard` package alone.
. "$(dirname "$0")/common.sh"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
fail() { log "package test FAILED: $*"; exit 1; }

# Inside the private X server (the script runs itself under xvfb-run): start the installed app
# with a throwaway HOME, in a process group of its own, and wait for its window.
if [ "${1:-}" = "--inside-display" ]; then
  home="$(mktemp -d)"
  trap 'rm -rf "$home"' EXIT
  HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" \
    XDG_RUNTIME_DIR="$home/run" setsid dbus-run-session -- /usr/bin/switchboard-app \
    >"$home/app.log" 2>&1 &
  app=$!
  found=""
  for _ in $(seq 1 600); do
    if xwininfo -root -tree 2>/dev/null | grep -q '"Switchboard"'; then found=yes; break; fi
    kill -0 "$app" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM -- "-$app" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$app" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$app" 2>/dev/null || true
  if [ -z "$found" ]; then
    sed 's/^/    app: /' "$home/app.log" >&2
    fail "the installed app's window did not show within 60 s"
  fi
  log "the installed app's window showed"
  exit 0
fi

package=switchboard
if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
  log "package test skipped: a '$package' package is installed here already, and it stays"
  exit 0
fi
deb="$("$ROOT/scripts/package.sh" --debug)"
[ "$(dpkg-deb -f "$deb" Package)" = "$package" ] || fail "$deb is not the '$package' package"
log "installing $deb"
as_root dpkg -i "$deb" >&2 || fail "dpkg -i $deb"
trap 'as_root dpkg -r "$package" >/dev/null 2>&1 || true' EXIT
version="$(PATH=/usr/bin:/bin switchboard --version)" || fail "switchboard is not on the PATH"
log "on the PATH: $version"
[ -x /usr/bin/switchboard-app ] || fail "no /usr/bin/switchboard-app"
desktop="$(dpkg -L "$package" | grep '\.desktop$' || true)"
[ -n "$desktop" ] && grep -q '^Exec=switchboard-app' "$desktop" || fail "no desktop entry starting switchboard-app"
dpkg -L "$package" | grep -q '/icons/hicolor/.*\.png$' || fail "no icons installed"
xvfb-run -a -s "-screen 0 1280x800x24" bash "$0" --inside-display
log "removing the package"
as_root dpkg -r "$package" >&2 || fail "dpkg -r $package"
trap - EXIT
dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" && fail "still installed"
for file in /usr/bin/switchboard /usr/bin/switchboard-app "$desktop"; do
  [ ! -e "$file" ] || fail "$file is left after dpkg -r"
done
log "package test passed: installed, ran, removed"
