"""FastMCP's proxy over stdio in front of one streamable-HTTP server (the benchmark's peer):
fastmcp_proxy.py URL. Its banner and update check are off, so stdout carries only MCP."""

import sys

from fastmcp.server import create_proxy

create_proxy({"mcpServers": {"fx": {"url": sys.argv[1], "transport": "http"}}}).run(
    "stdio", show_banner=False
)
