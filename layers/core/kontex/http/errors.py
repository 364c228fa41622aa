"""The errors only HTTP has: a method a route does not take, a body in a media type it does not
read. The same error shape and mapping to status codes as every other (``kontex.api.errors``)."""

from __future__ import annotations

from kontex.domain.errors import KontexError


class MethodNotAllowed(KontexError):
    code = "method_not_allowed"


class UnsupportedMediaType(KontexError):
    code = "unsupported_media_type"
