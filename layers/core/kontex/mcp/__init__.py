"""MCP tools at ``/mcp``: the official SDK's server, driven in-process from Lambda events."""
