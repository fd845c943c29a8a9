"""The HTTP face of the local CDE: a FastAPI app whose handlers parse, call the backend, respond.

Routes (JOBS API URL = `<base>/dex/api/v1`):

    GET|POST /gateway/authtkn/knoxtoken/api/v1/token   Knox token for HTTP Basic credentials
    GET|POST /gateway/cdptkn/knoxtoken/api/v1/token    the same (the path of Cloudera's curl recipe)
    POST   /api/v0/auth/access-keys/token              console token for an access key: form body
                                                       grant_type=client_credentials, HTTP Basic
                                                       key id:private key; {access_token,
                                                       token_type, expires_in (epoch ms)}
    GET    /dex/api/v1/info
    POST   /dex/api/v1/resources                       201, empty
    GET    /dex/api/v1/resources                       {"resources": [...], "meta": {...}}
    GET    /dex/api/v1/resources/{name}                ?includeFiles=true|false
    DELETE /dex/api/v1/resources/{name}                204
    PUT    /dex/api/v1/resources/{name}/{path}         multipart field `file`; 201, empty
    GET    /dex/api/v1/resources/{name}/{path}         raw bytes
    DELETE /dex/api/v1/resources/{name}/{path}         204
    POST   /dex/api/v1/jobs                            201, empty
    GET    /dex/api/v1/jobs                            {"jobs": [...], "meta": {...}}
    GET    /dex/api/v1/jobs/{name}
    PATCH  /dex/api/v1/jobs/{name}                     200, the job
    DELETE /dex/api/v1/jobs/{name}                     204
    POST   /dex/api/v1/jobs/{name}/run                 201 {"id": n}; 409 {"id": earlier} on a reused requestID
    POST   /dex/api/v1/jobs/{name}/schedule/pause|unpause   201, empty
    GET    /dex/api/v1/job-runs                        {"runs": [...], "meta": {...}}
    GET    /dex/api/v1/job-runs/{id}
    GET    /dex/api/v1/job-runs/{id}/logs?type=driver/stdout   text/plain
    GET    /dex/api/v1/job-runs/{id}/log-types         ["driver/stdout", ...]
    POST   /dex/api/v1/job-runs/{id}/kill              204, empty
    GET    /local/health                               not CDE: loopback only, no auth
    GET|PUT|DELETE /local/faults                       not CDE: fault switches (faults.py)

Every /dex/api/v1 call first passes the fault switches, then needs a valid bearer token. Errors
are `{"status": "error", "message": ...}` with CDE's codes; FastAPI's own 422 becomes a 400.
JSON bodies nested deeper than MAX_JSON_DEPTH, holding lone UTF-16 surrogates (`"\\ud800"`) or
numbers JSON cannot carry (`NaN`, `Infinity`, `1e400`: Go's decoder refuses them too) are a 400.
Python's json reads them, but once stored the first two made every later GET of the job, and of the
job list, a 500; the numbers came back as null. A run id beyond SQLite's 64-bit integers is a 404.
Any other exception is a 500 with the generic INTERNAL_ERROR_MESSAGE; its traceback goes to the
`cde_local.server` logger, never to the client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import re
import urllib.parse
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import filters
from .backend import Backend
from .errors import ApiError, BadRequest, Forbidden, RunNotFound

API_PREFIX = "/dex/api/v1"
TOKEN_PATH = "/gateway/authtkn/knoxtoken/api/v1/token"
CDP_TOKEN_PATH = "/gateway/cdptkn/knoxtoken/api/v1/token"  # Knox's cdptkn topology: same answer
ACCESS_KEY_TOKEN_PATH = "/api/v0/auth/access-keys/token"  # the console's OAuth client-credentials route
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_UPLOAD_PART_BYTES = 512 * 1024 * 1024  # multipart parts sent without a filename are held in memory
MAX_JSON_DEPTH = 64  # CDE's bodies nest about 4 levels; the encoders give up somewhere below 1000
MAX_RUN_ID = 2**63 - 1  # SQLite's INTEGER
INTERNAL_ERROR_MESSAGE = "internal error; see the local CDE's log"

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")


def create_app(backend: Backend) -> FastAPI:
    app = FastAPI(title="cde_local: CDE Jobs API v1", docs_url=None, redoc_url=None, openapi_url=None)
    _install_error_handlers(app)
    app.include_router(_token_router(backend))
    app.include_router(_api_router(backend))
    app.include_router(_local_router(backend))
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:3]
        )
        return JSONResponse({"status": "error", "message": f"invalid request: {problems}"}, status_code=400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug of ours (or a data directory broken under us): the traceback goes to our log, the
        # client gets CDE's error body with a generic message, never the exception (paths,
        # internals). Starlette re-raises afterwards, so uvicorn logs it once more.
        log.error("internal error answering %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"status": "error", "message": INTERNAL_ERROR_MESSAGE}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"status": "error", "message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )


# -- helpers ------------------------------------------------------------------------------------
async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest(f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    _check_json(body)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_json(body: Any) -> None:
    """Refuse what parsed but would break later: deep nesting, lone surrogates, infinite numbers.
    Iterative, as deep nesting would break a recursive walk too."""
    pending: list[tuple[Any, int]] = [(body, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if not value.isascii() and _SURROGATE.search(value):
                raise BadRequest("invalid JSON body: a string holds a lone UTF-16 surrogate")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise BadRequest("invalid JSON body: a number is out of range")
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise BadRequest(f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)


def _list_query(request: Request, default_orderby: str) -> filters.ListQuery:
    params = request.query_params
    return filters.parse_list_query(
        {key: params.get(key) for key in ("orderby", "orderasc", "limit", "offset")},
        params.getlist("filter"),
        default_orderby,
    )


def _json_reply(body: Any) -> Response:
    """A JSON reply encoded by orjson, which splices the stored text of a raw page's documents
    (`orjson.Fragment`); what orjson refuses (an integer beyond 64 bits in a document) goes through
    the standard encoder, which only a page of decoded documents can reach."""
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:
        content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    return Response(content, media_type="application/json")


def _include_files(request: Request) -> bool:
    return filters.parse_bool_param("includeFiles", request.query_params.get("includeFiles"), default=False)


def _run_id(raw: str) -> int:
    try:
        run_id = int(raw)
    except ValueError:
        raise BadRequest(f"invalid job run id '{raw[:40]}': expected an integer") from None
    if not -MAX_RUN_ID <= run_id <= MAX_RUN_ID:
        raise RunNotFound()  # no such id can exist
    return run_id


def _empty(status: int) -> Response:
    return Response(status_code=status)


# -- routers ------------------------------------------------------------------------------------
def _token_router(backend: Backend) -> APIRouter:
    router = APIRouter()

    @router.api_route(TOKEN_PATH, methods=["GET", "POST"])
    @router.api_route(CDP_TOKEN_PATH, methods=["GET", "POST"])
    def token(request: Request) -> JSONResponse:
        try:
            return JSONResponse(backend.issue_token(request.headers.get("authorization")))
        except ApiError as exc:
            exc.headers.setdefault("WWW-Authenticate", 'Basic realm="cde_local"')
            raise

    @router.post(ACCESS_KEY_TOKEN_PATH)
    async def access_key_token(request: Request) -> JSONResponse:
        grant_type = _form_field(request.headers.get("content-type"), await request.body(), "grant_type")
        reply = backend.issue_access_key_token(request.headers.get("authorization"), grant_type)
        return JSONResponse(reply, headers={"Cache-Control": "no-store"})

    return router


def _form_field(content_type: str | None, body: bytes, name: str) -> str | None:
    """The one value of `name` in an `application/x-www-form-urlencoded` body; None when the body
    is not such a form, or has no such field, or has it more than once."""
    if (content_type or "").partition(";")[0].strip().lower() != FORM_CONTENT_TYPE:
        return None
    try:
        values = urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True).get(name, [])
    except UnicodeDecodeError:
        return None
    return values[0] if len(values) == 1 else None


def _api_router(backend: Backend) -> APIRouter:
    async def guard(request: Request) -> None:
        """Fault switches first (as a gateway in front of CDE would fail), then the bearer token."""
        delay = backend.faults.latency_s()
        if delay:
            await asyncio.sleep(delay)
        backend.faults.check_call()
        request.state.user = backend.authenticate(request.headers.get("authorization"))

    router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(guard)])

    @router.get("/info")
    def info() -> dict[str, Any]:
        return backend.info()

    # Reads answer through `_json_reply`: the backend's documents are JSON already, and FastAPI's
    # encoder for a returned dict (jsonable_encoder) cost 5x the whole query on a page of 100 runs.

    # resources
    @router.post("/resources")
    async def create_resource(request: Request) -> Response:
        body = await _json_body(request)
        await run_in_threadpool(backend.create_resource, body)
        return _empty(201)

    @router.get("/resources")
    def list_resources(request: Request) -> JSONResponse:
        return _json_reply(backend.list_resources(_list_query(request, "name"), _include_files(request)))

    @router.get("/resources/{name}")
    def describe_resource(name: str, request: Request) -> JSONResponse:
        return _json_reply(backend.describe_resource(name, _include_files(request)))

    @router.delete("/resources/{name}")
    def delete_resource(name: str) -> Response:
        backend.delete_resource(name)
        return _empty(204)

    @router.put("/resources/{name}/{path:path}")
    async def upload_file(name: str, path: str, request: Request) -> Response:
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise BadRequest("upload a file as multipart/form-data with the field 'file'")
        try:
            form = await request.form(max_part_size=MAX_UPLOAD_PART_BYTES)
        except Exception as exc:  # python-multipart / starlette parse errors
            raise BadRequest(f"invalid multipart body: {exc}") from None
        try:
            part = form.get("file")
            if isinstance(part, UploadFile):
                content = await part.read()
            elif isinstance(part, str):
                content = part.encode()
            else:
                raise BadRequest("multipart field 'file' is required")
        finally:
            await form.close()
        await run_in_threadpool(backend.upload_file, name, path, content)
        return _empty(201)

    @router.get("/resources/{name}/{path:path}")
    def download_file(name: str, path: str) -> Response:
        return Response(backend.download_file(name, path), media_type="application/octet-stream")

    @router.delete("/resources/{name}/{path:path}")
    def delete_file(name: str, path: str) -> Response:
        backend.delete_file(name, path)
        return _empty(204)

    # jobs
    @router.post("/jobs")
    async def create_job(request: Request) -> Response:
        body = await _json_body(request)
        await run_in_threadpool(backend.create_job, body, request.state.user)
        return _empty(201)

    @router.get("/jobs")
    def list_jobs(request: Request) -> JSONResponse:
        return _json_reply(backend.list_jobs(_list_query(request, "name"), raw=True))

    @router.get("/jobs/{name}")
    def describe_job(name: str) -> JSONResponse:
        return _json_reply(backend.describe_job(name))

    @router.patch("/jobs/{name}")
    async def update_job(name: str, request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        return await run_in_threadpool(backend.update_job, name, body, request.state.user)

    @router.delete("/jobs/{name}")
    def delete_job(name: str) -> Response:
        backend.delete_job(name)
        return _empty(204)

    @router.post("/jobs/{name}/run")
    async def run_job(name: str, request: Request) -> JSONResponse:
        body = await _json_body(request)
        run_id = await run_in_threadpool(backend.run_job, name, body, request.state.user)
        return JSONResponse({"id": run_id}, status_code=201)

    @router.post("/jobs/{name}/schedule/{action}")
    def schedule(name: str, action: str) -> Response:
        if action not in ("pause", "unpause"):
            raise BadRequest(f"unknown schedule action '{action}': use pause or unpause")
        backend.set_schedule_paused(name, action == "pause")
        return _empty(201)

    # runs
    @router.get("/job-runs")
    def list_runs(request: Request) -> JSONResponse:
        return _json_reply(backend.list_runs(_list_query(request, "id"), raw=True))

    @router.get("/job-runs/{run_id}")
    def describe_run(run_id: str) -> JSONResponse:
        return _json_reply(backend.describe_run(_run_id(run_id)))

    @router.get("/job-runs/{run_id}/logs")
    def run_logs(run_id: str, request: Request) -> PlainTextResponse:
        return PlainTextResponse(backend.run_log(_run_id(run_id), request.query_params.get("type")))

    @router.get("/job-runs/{run_id}/log-types")
    def log_types(run_id: str) -> list[str]:
        return backend.log_types(_run_id(run_id))

    @router.post("/job-runs/{run_id}/kill")
    def kill_run(run_id: str) -> Response:
        backend.kill_run(_run_id(run_id))
        return _empty(204)

    return router


def _local_router(backend: Backend) -> APIRouter:
    def loopback_only(request: Request) -> None:
        host = request.client.host if request.client else ""
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise Forbidden("the /local admin endpoints answer only loopback clients")

    router = APIRouter(prefix="/local", dependencies=[Depends(loopback_only)])

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "runMode": backend.config.run_mode,
            "jobsApiUrl": backend.public_url + API_PREFIX,
        }

    @router.get("/faults")
    def get_faults() -> dict[str, Any]:
        return backend.faults.snapshot()

    @router.put("/faults")
    async def put_faults(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise BadRequest('send a JSON object of fault switches, e.g. {"error_burst": 2}')
        return backend.faults.update(**body)

    @router.delete("/faults")
    def reset_faults() -> dict[str, Any]:
        return backend.faults.reset()

    return router
