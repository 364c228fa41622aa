"""The API Gateway event codec's old path: it is ``kontex.http.apigw`` (the deployed proxy
uses it too). Kept only for imports not yet moved; new code imports ``kontex.http.apigw``."""

from kontex.http.apigw import LocalContext, http_api_event, response_parts

__all__ = ["LocalContext", "http_api_event", "response_parts"]
