"""``/jobs``: start, watch, list, cancel and download background imports and exports (admins only)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import TypeAdapter, ValidationError

from server.deps import SettingsDep, StoreDep
from server.errors import APIError
from server.ingest.document import DatasetError, DocumentCheck, NotJson
from server.ingest.ndjson import NdjsonCheck
from server.jobs.exports import Exporter
from server.jobs.imports import Importer
from server.jobs.registry import Job, JobRegistry, JobStatus, Pacer
from server.jobs.snapshots import SnapshotJob
from server.jobs.upload import ImportSlots, Upload, receive
from server.middleware.concurrency import InFlight
from server.models.common import CollectionEnvelope, Envelope
from server.models.job import ExportJobCreate, ImportJobCreate, JobCreate, JobPublic, SnapshotJobCreate
from server.paths import API_PREFIX
from server.responses import collection, plain
from server.security.access import AuthenticateFirstRoute
from server.security.auth import AdminOnly
from server.settings import Settings
from server.validation import details
from store import Page
from store.codecs import datetime_to_micros, micros_to_text

router = APIRouter(
    prefix=f"{API_PREFIX}/jobs", tags=["jobs"], dependencies=[AdminOnly], route_class=AuthenticateFirstRoute
)

NDJSON = "application/x-ndjson"
_JOB_CREATE: TypeAdapter[ImportJobCreate | ExportJobCreate | SnapshotJobCreate] = TypeAdapter(JobCreate)
_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        ImportJobCreate.model_json_schema(),
                        ExportJobCreate.model_json_schema(),
                        SnapshotJobCreate.model_json_schema(),
                    ]
                }
            },
            NDJSON: {"schema": {"type": "string", "description": 'lines of {"section": "users", "record": {...}}'}},
        },
    }
}


def _registry(request: Request) -> JobRegistry:
    registry: JobRegistry = request.app.state.jobs
    return registry


def _stamp(value: Any) -> str | None:
    return None if value is None else micros_to_text(datetime_to_micros(value))


def _public(request: Request, job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "type": job.type,
        "status": job.status.value,
        "parameters": job.parameters,
        "progress": {"done": job.done, "total": job.total},
        "created_at": _stamp(job.created_at),
        "started_at": _stamp(job.started_at),
        "finished_at": _stamp(job.finished_at),
        "result": job.result,
        "error": job.error,
        "result_url": request.url_for("get_job_result", job_id=str(job.id)).path if job.type == "export" else None,
    }


def _pacer(request: Request, own: int = 0) -> Pacer:
    """A pacer that gives way while requests (beyond ``own``, the caller's) are being served."""
    in_flight: InFlight = request.app.state.in_flight
    return Pacer(lambda: in_flight.count > own)


def _find(request: Request, job_id: UUID) -> Job:
    job = _registry(request).get(job_id)
    if job is None:
        raise APIError(404, "NOT_FOUND", "job not found")
    return job


def _invalid(message: str, details: list[dict[str, str]] | None = None) -> APIError:
    return APIError(422, "VALIDATION_ERROR", message, details)


def _slots(request: Request) -> ImportSlots:
    slots: ImportSlots = request.app.state.import_slots
    return slots


async def _received(request: Request, settings: Settings, check: DocumentCheck | NdjsonCheck) -> Upload:
    """The body, streamed through ``check`` into a spool file; a body that is not a dataset is refused."""
    try:
        return await receive(
            request, check, _slots(request), settings.max_body_bytes, settings.import_spool_dir, _pacer(request, own=1)
        )
    except NotJson as error:
        message = str(error) if isinstance(check, NdjsonCheck) else "the request body is not valid JSON"
        raise APIError(400, "BAD_REQUEST", message) from None
    except DatasetError as error:  # its message names the line or the member
        raise _invalid(str(error), [{"field": "body", "message": str(error)}]) from None


def _job_request(upload: Upload) -> ImportJobCreate | ExportJobCreate | SnapshotJobCreate:
    """What a JSON body asks for: its members beside ``data`` validated, ``data`` itself already checked."""
    assert isinstance(upload.check, DocumentCheck)
    document = {**upload.check.header, **({"data": {}} if upload.check.found else {})}
    try:
        return _JOB_CREATE.validate_python(document)
    except ValidationError as error:
        upload.close()
        raise _invalid("request validation failed", details(error.errors(), "body")) from None


@router.post("", status_code=202, response_model=Envelope[JobPublic], openapi_extra=_BODY_SCHEMA)
async def create_job(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    mode: str = Query("all-or-nothing", description="For NDJSON imports: all-or-nothing or skip-invalid."),
) -> Response:
    """Start an import or an export; answers 202 with the job to watch."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == NDJSON:
        if mode not in ("all-or-nothing", "skip-invalid"):
            raise _invalid("mode must be all-or-nothing or skip-invalid", [{"field": "query.mode", "message": mode}])
        upload = await _received(request, settings, NdjsonCheck())
        spec: ImportJobCreate | ExportJobCreate | SnapshotJobCreate = ImportJobCreate(type="import", mode=mode, data={})
    elif media_type == "application/json":
        upload = await _received(request, settings, DocumentCheck(at="data"))
        spec = _job_request(upload)
    else:
        raise APIError(415, "UNSUPPORTED_MEDIA_TYPE", f"send application/json or {NDJSON}")

    if isinstance(spec, ImportJobCreate):
        parameters: dict[str, Any] = {"mode": spec.mode, "records": upload.total}
        job = Job("import", parameters, total=upload.total)
        importer = Importer(store, upload.records(), upload.total, spec.mode, settings.bcrypt_rounds, _pacer(request))
        _registry(request).submit(job, importer, on_done=upload.close)  # the spool file goes with the job
    elif isinstance(spec, SnapshotJobCreate):
        upload.close()
        snapshots = request.app.state.snapshotter
        if snapshots is None:
            raise APIError(409, "CONFLICT", "persistence is off: set MEMDB_DATA_DIR to take snapshots")
        job = Job("snapshot", {})
        _registry(request).submit(job, SnapshotJob(snapshots))
    else:
        upload.close()
        parameters = {
            "tables": spec.tables,
            "format": spec.format,
            "include_password_hashes": spec.include_password_hashes,
        }
        job = Job("export", parameters)
        exporter = Exporter(store, spec.tables, spec.format, spec.include_password_hashes, _pacer(request))
        _registry(request).submit(job, exporter)
    response = plain(_public(request, job), 202, "no-store")
    response.headers["Location"] = request.url_for("get_job", job_id=str(job.id)).path
    return response


@router.get("", response_model=CollectionEnvelope[list[JobPublic]])
async def list_jobs(request: Request) -> Response:
    """List the jobs still remembered, oldest first."""
    registry = _registry(request)
    jobs = [_public(request, job) for job in registry.list()]
    # One page holds them all: the registry keeps at most keep_count finished jobs (plus any running).
    return collection(request, Page(jobs, len(jobs), 1, max(len(jobs), registry.keep_count)))


@router.get("/{job_id}", response_model=Envelope[JobPublic])
async def get_job(job_id: UUID, request: Request) -> Response:
    """A job's status, progress, timestamps and, once finished, its result or error."""
    return plain(_public(request, _find(request, job_id)), cache_control="no-store")


@router.delete("/{job_id}", response_model=Envelope[JobPublic])
async def cancel_job(job_id: UUID, request: Request) -> Response:
    """Cancel a queued or running job and remove it (an all-or-nothing import leaves nothing behind)."""
    job = _find(request, job_id)
    if job.finished:
        raise APIError(409, "CONFLICT", f"the job has already finished ({job.status.value})")
    await _registry(request).cancel(job)
    if job.status is not JobStatus.cancelled:  # it finished (an import's commit was already under way)
        raise APIError(409, "CONFLICT", f"the job {job.status.value} before it could be cancelled")
    _registry(request).forget(job)  # a DELETE removes what it cancelled: the answer is its last state
    return plain(_public(request, job), cache_control="no-store")


_RESULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The export file, as it was asked for.",
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": 'a dataset: {"users": [...], "orders": [...]}'}
            },
            NDJSON: {"schema": {"type": "string", "description": 'lines of {"section": "users", "record": {...}}'}},
        },
    },
    409: {"description": "Not finished."},
}


@router.get("/{job_id}/result", response_class=Response, responses=_RESULT_RESPONSES)
async def get_job_result(job_id: UUID, request: Request) -> Response:
    """Download a finished export, in the format it was asked for."""
    job = _find(request, job_id)
    if job.type != "export":
        raise APIError(404, "NOT_FOUND", "only export jobs have a downloadable result")
    if job.status is not JobStatus.succeeded or job.payload is None:
        raise APIError(409, "CONFLICT", f"the export is {job.status.value}, not finished")
    extension = "ndjson" if job.media_type == NDJSON else "json"
    headers = {
        "Content-Disposition": f'attachment; filename="memdb-export-{job.id}.{extension}"',
        "Cache-Control": "no-store",  # it may hold every password hash: no cache keeps a copy
    }
    return Response(job.payload, media_type=job.media_type, headers=headers)
