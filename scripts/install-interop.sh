#!/usr/bin/env bash
# Installs the MCP servers and clients nobody here wrote that the interoperability tests run,
# pinned: npm @modelcontextprotocol/server-everything (stdio and streamable HTTP) and the
# TypeScript SDK (the clients of `switchboard serve`), PyPI mcp-server-time (stdio) and the
# Python SDK `mcp`, into $SWITCHBOARD_INTEROP_DIR (default ~/.cache/switchboard/interop).
# Quick when they are already there. Prints the directory (and nothing else) on stdout.
. "$(dirname "$0")/common.sh"

EVERYTHING_VERSION=2026.8.31
TIME_VERSION=2026.10.19
TS_SDK_VERSION=1.32.2
PY_SDK_VERSION=2.3.0
DIR="${SWITCHBOARD_INTEROP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/interop}"
mkdir -p "$DIR"

modules="$DIR/npm/node_modules/@modelcontextprotocol"
if ! grep -q "\"version\": \"$EVERYTHING_VERSION\"" "$modules/server-everything/package.json" 2>/dev/null ||
   ! grep -q "\"version\": \"$TS_SDK_VERSION\"" "$modules/sdk/package.json" 2>/dev/null; then
  log "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION and sdk@$TS_SDK_VERSION"
  npm install --prefix "$DIR/npm" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" \
    "@modelcontextprotocol/sdk@$TS_SDK_VERSION" >&2
fi

version_of() { "$DIR/venv/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p' || true; }
if [ "$(version_of mcp-server-time)" != "$TIME_VERSION" ] || [ "$(version_of mcp)" != "$PY_SDK_VERSION" ]; then
  log "installing mcp-server-time==$TIME_VERSION and mcp==$PY_SDK_VERSION"
  python3 -m venv "$DIR/venv" >&2
  "$DIR/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "mcp-server-time==$TIME_VERSION" "mcp==$PY_SDK_VERSION" >&2
fi
# The only line on stdout: test.sh captures it.
echo "$DIR"
