"""Export: a completed job as a file to download, Markdown or JSON (``export.py`` renders it).

The job is read like its JSON status (``JobReader``: the store while it has the job, the
history after), so a job exports the same on any replica and long after its event log
expired. Its owner may export it, and so may a share link of that job, which exists to let
others read it; the job's stream token may not: it follows the job, nothing more.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import JobNotCompleteError
from ..export import file_name, render
from ..models import JobState
from .history_api import status_wire
from .params import export_format, job_id
from .state import AppState

__all__ = ["export_job"]


async def export_job(state: AppState, request: Request) -> Response:
    job = request.path_params["job_id"]
    identity = await state.authenticate(request, state_changing=False, job_id=job, read_only=True)
    if identity.via == "stream-token":  # not a credential here: the caller's own, if any
        identity = await state.authenticate(request, state_changing=False)
    chosen = export_format(request)
    entry = await state.service.reader.status(identity.user_id, job_id(request))
    if entry.status is not JobState.COMPLETED:
        raise JobNotCompleteError(
            f"The job is {entry.status.value.replace('_', ' ')}; "
            "only a completed job can be exported"
        )
    document = status_wire(entry)
    headers = {
        "content-disposition": f'attachment; filename="{file_name(document, chosen)}"',
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
    }
    return Response(render(document, chosen), headers=headers, media_type=chosen.media_type)
