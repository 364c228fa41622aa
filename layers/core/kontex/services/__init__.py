"""Use cases. Each function takes a ``Deps`` (the ports) first, then plain arguments."""

from kontex.services.deps import Deps

__all__ = ["Deps"]
