"""The Anthropic-compatible proxy: forward unchanged, reassemble the reply for capture."""
