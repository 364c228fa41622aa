"""The session archive's routes: ``POST /v1/sessions/import`` and
``GET /v1/sessions/{id}/export`` (docs/export-format.md).

A router of their own, so that the archive's models (``kontex.domain.archive``, whose classes
their declarations need) load with the first request to one of these paths, not with every
session route's (kontex.api.rest includes this router for those paths only; the OpenAPI
document keeps them where they were, among the session routes: ``rest.SESSION_ROUTES``).
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from kontex.api.auth import caller, count_snapshot_write
from kontex.api.shapes import answers
from kontex.domain.archive import ImportedSession, SessionArchive
from kontex.domain.errors import PayloadTooLarge

router = APIGatewayHttpRouter()

# An answer's body must stay under Lambda's 6 MB payload limit (with room for its envelope), the
# same limit locally and on AWS: docs/export-format.md, "Size"
EXPORT_MAX_BYTES = 5 * 1024 * 1024


@router.post("/v1/sessions/import", tags=["sessions"], responses=answers(ImportedSession))
def import_session(
    body: SessionArchive,
    keep_ids: Annotated[
        bool, Query(description="Keep the archive's ids (409 when any exists here).")
    ] = False,
) -> tuple[dict[str, Any], int]:
    """Write an archive (``GET /v1/sessions/{id}/export``) as it was stored, whole or not at
    all: every hash is checked first; new ids unless ``keep_ids``."""
    deps, me = caller()
    count_snapshot_write(me)
    from kontex.services import archive

    made = archive.import_session(deps, me.account_id, body, keep_ids=keep_ids)
    return made.model_dump(mode="json"), 201


@router.get(
    "/v1/sessions/<session_id>/export", tags=["sessions"], responses=answers(SessionArchive)
)
def export_session(session_id: str) -> Response[str]:
    """The session as stored, every hash verified: its archive (docs/export-format.md)."""
    deps, me = caller()
    from kontex.services import archive

    text = archive.export_session(deps, me.account_id, session_id).model_dump_json()
    if len(text) > EXPORT_MAX_BYTES:
        raise PayloadTooLarge(
            f"the archive of session {session_id} is {len(text)} bytes, over the"
            f" {EXPORT_MAX_BYTES} one answer can carry",
            details={"bytes": len(text), "limit": EXPORT_MAX_BYTES},
        )
    return Response(status_code=200, content_type="application/json", body=text)
