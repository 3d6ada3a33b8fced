"""``/v1/allocations``: list, look up, get-or-allocate (``PUT``), release (``DELETE``), batch.

A model name may hold ``/`` (``openai/gpt-4o``). Servers decode ``%2F`` before routing
(uvicorn puts the decoded path in the ASGI ``path``), so an encoded and a plain ``/``
arrive the same; the route takes the model as a ``path`` parameter and the app number
as the last segment, which a model name can never swallow. Starlette's own ``path``
convertor stops at a newline (its ``.*``), which would turn a model holding a control
character into a 404; the ``model`` convertor takes every character, so such a name
gets the CLI's 400 instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException

from portalloc.core.keys import check_key, check_model_name, parse_app_num
from portalloc.core.limits import MAX_APP_NUM
from portalloc.core.models import Allocation
from portalloc.reports import UsedPair, used_pair
from portalloc.server import conditional
from portalloc.server.problems import Problem
from portalloc.server.schemas import BatchRequest, describe_model_name
from portalloc.server.state import State
from portalloc.service.facade import PortAllocationService
from portalloc.storage.strictjson import parse_json


class _ModelConvertor(PathConvertor):
    regex = r"[\s\S]*"


register_url_convertor("model", _ModelConvertor())
router = APIRouter(prefix="/v1/allocations", tags=["allocations"])
_KEY_PATH = "/{model:model}/{app_num}"
#: The key in the URL. Both are taken as text and checked by ``parse_key`` (the CLI's rules and
#: messages, a 400 on failure); the OpenAPI document still says what a valid one is.
ModelSegment = Annotated[
    str,
    Path(description="The model name; '/' may be sent as is or as %2F.", json_schema_extra=describe_model_name),
]
AppNumSegment = Annotated[
    str,
    Path(description="The app number.", json_schema_extra={"type": "integer", "minimum": 1, "maximum": MAX_APP_NUM}),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="Act only if the key's pair has one of these ETags ('*': has a pair)."),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", description="'*' on PUT: allocate only a new key; on GET: 304 if unchanged."),
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "The key has no allocation"}}
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag in If-None-Match"}}
_PRECONDITION: dict[int | str, dict[str, Any]] = {
    412: {"model": Problem, "description": "If-Match or If-None-Match does not hold; nothing changed"}
}


def parse_key(model: str, app_num: str) -> tuple[str, int]:
    """The key named by a URL's model and app number, validated as the CLI validates its arguments."""
    return check_key(model, parse_app_num(app_num))


def _no_allocation(state: State, model: str, app_num: int) -> HTTPException:
    # Answered as a problem with code "not_found" by the app's handler, in the CLI's words.
    return HTTPException(404, f"{model}/{app_num} has no allocation in {state.service.ledger_path}")


@router.get("", responses=_NOT_MODIFIED, response_model=list[UsedPair])
def list_allocations(
    state: State,
    response: Response,
    model: Annotated[str | None, Query(description="Only this model's.", json_schema_extra=describe_model_name)] = None,
    committed: Annotated[bool, Query(description="The ledger's pairs, not a linked worktree's own.")] = False,
    if_none_match: IfNoneMatch = None,
) -> Any:
    """Every allocation sorted by ``(model, app_num)``, or only ``model``'s, as this work tree uses it
    (``list``: a linked worktree's own pair under ``worktrees: separate``); ``ETag`` names the list."""
    if model is not None:
        model = check_model_name(model)
    allocations = state.read(lambda service: service.get_all_allocations() if committed else service.pairs_in_use())
    chosen = [a for a in allocations if model is None or a.model == model]
    etag = conditional.list_etag(chosen)
    if conditional.not_modified(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return [used_pair(a) for a in chosen]


async def _no_repeated_names(request: Request) -> None:
    """Refuse a body with a name twice in one object, as ``get-many`` does: the JSON parser keeps the last."""
    try:
        parse_json((await request.body()).decode("utf-8"))  # Starlette keeps the body: FastAPI read it first
    except ValueError as error:
        raise RequestValidationError([{"loc": ("body",), "msg": str(error), "type": "value_error"}]) from None


@router.post("/batch", dependencies=[Depends(_no_repeated_names)])
def allocate_batch(state: State, batch: BatchRequest) -> list[UsedPair]:
    """Get-or-allocate every key under one lock and one write; the pairs in the order asked."""
    keys = [(key.model, key.app_num) for key in batch.keys]
    return [used_pair(pair) for pair in state.write(lambda service: service.allocate_many(keys))]


@router.get(_KEY_PATH, responses={**_NOT_FOUND, **_NOT_MODIFIED}, response_model=UsedPair)
def get_allocation(
    state: State, model: ModelSegment, app_num: AppNumSegment, response: Response, if_none_match: IfNoneMatch = None
) -> Any:
    """The pair of ``(model, app_num)`` with its ``ETag``; 404 when it has none. Never allocates."""
    key = parse_key(model, app_num)
    found = state.read(lambda service: service.get_ports(*key))
    if found is None:
        raise _no_allocation(state, *key)
    etag = conditional.etag_of(found)
    if conditional.not_modified(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return used_pair(found)


@router.put(
    _KEY_PATH,
    status_code=201,
    responses={200: {"model": UsedPair, "description": "The key's pair"}, **_PRECONDITION},
)
def put_allocation(
    state: State,
    model: ModelSegment,
    app_num: AppNumSegment,
    response: Response,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> UsedPair:
    """Get-or-allocate: 200 with the pair the key already had, 201 with a newly allocated one.

    ``If-None-Match: *`` allocates only a new key (412 if it has a pair, checked under
    the ledger's lock); ``If-Match`` answers only if the key's pair has that ``ETag``.
    """
    key = parse_key(model, app_num)
    conditions = if_match is not None or if_none_match is not None

    def get_or_allocate(service: PortAllocationService) -> tuple[Allocation, bool]:
        existing = service.get_ports(*key)
        for header, holds in ((if_match, conditional.if_match_holds), (if_none_match, conditional.if_none_match_holds)):
            if header is not None and not holds(header, existing):
                raise conditional.refuse(key, header, existing)
        if existing is not None:
            return existing, False
        return service.allocate_many([key], new_only=conditions)[0], True

    # A key that has its pair is answered lock-free, as `portalloc get` answers it: a stuck writer cannot
    # delay it. Preconditions are checked under the ledger's lock, so a conditional PUT always writes.
    existing = None if conditions else state.read(lambda service: service.get_ports(*key))
    pair, created = (existing, False) if existing is not None else state.write(get_or_allocate)
    if not created:
        response.status_code = 200
    response.headers["ETag"] = conditional.etag_of(pair)
    return used_pair(pair)


@router.delete(_KEY_PATH, status_code=204, responses={**_NOT_FOUND, **_PRECONDITION})
def delete_allocation(state: State, model: ModelSegment, app_num: AppNumSegment, if_match: IfMatch = None) -> Response:
    """Release the pair of ``(model, app_num)``: 204, or 404 when it had none.

    With ``If-Match``, only if the key's pair (under the ledger's lock) has one of those ``ETag`` s: 412 otherwise.
    """
    key = parse_key(model, app_num)

    def holds(current: Allocation) -> bool:
        return conditional.if_match_holds(if_match, current)

    if not state.write(lambda service: service.release_ports(*key, only_if=holds if if_match is not None else None)):
        raise _no_allocation(state, *key)
    return Response(status_code=204)
