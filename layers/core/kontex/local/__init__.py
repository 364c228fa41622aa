"""The embedded local stack (``kontex dev``)."""
