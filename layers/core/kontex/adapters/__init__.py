"""Adapters: the ports implemented on real infrastructure (and its embedded stand-ins)."""
