#!/usr/bin/env bash
# Installs the MCP servers nobody here wrote that the interoperability tests run, pinned:
# npm @modelcontextprotocol/server-everything (stdio and streamable HTTP) and PyPI
# mcp-server-time (stdio), into $SWITCHBOARD_INTEROP_DIR (default ~/.cache/switchboard/interop).
# Quick when they are already there. Prints the directory (and nothing else) on stdout.
. "$(dirname "$0")/common.sh"

EVERYTHING_VERSION=2026.8.31
TIME_VERSION=2026.10.19
DIR="${SWITCHBOARD_INTEROP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/interop}"
mkdir -p "$DIR"

everything="$DIR/npm/node_modules/@modelcontextprotocol/server-everything/package.json"
if ! grep -q "\"version\": \"$EVERYTHING_VERSION\"" "$everything" 2>/dev/null; then
  log "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION"
  npm install --prefix "$DIR/npm" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" >&2
fi

installed="$("$DIR/venv/bin/python" -m pip show mcp-server-time 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ "$installed" != "$TIME_VERSION" ]; then
  log "installing mcp-server-time==$TIME_VERSION"
  python3 -m venv "$DIR/venv" >&2
  "$DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "mcp-server-time==$TIME_VERSION" >&2
fi
# The only line on stdout: test.sh captures it.
echo "$DIR"
