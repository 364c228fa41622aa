"""The REST surface: a Powertools resolver with one router per resource."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from kontex import __version__


def build_resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
