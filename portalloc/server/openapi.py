"""The OpenAPI document as the server enforces it, served indented at ``/openapi.json``.

FastAPI generates the document from the routes and models; this adds what the
middleware enforces and FastAPI cannot see: the bearer token on every route that
changes state (``securitySchemes`` and ``security``), and errors as
``application/problem+json``. A client generated from the document (openapi-python-client)
then sends the token and understands every answer.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response

from portalloc.server.problems import PROBLEM_MEDIA_TYPE, Problem

#: The name of the bearer scheme in the document.
BEARER = "bearer"
_WRITES = ("put", "post", "delete", "patch")
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
#: FastAPI's own 422 body, which the server never sends (its 422 is a problem).
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def build_document(app: FastAPI) -> dict[str, Any]:
    """The document of ``app``: FastAPI's, with the token and the problem responses declared."""
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
    components["securitySchemes"] = {BEARER: {"type": "http", "scheme": "bearer"}}
    for item in document["paths"].values():
        for method, operation in item.items():
            if method in _WRITES:
                operation["security"] = [{BEARER: []}]
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")) and _is_problem(response):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
    for name in _FASTAPI_422:
        components["schemas"].pop(name, None)
    return document


def _is_problem(response: dict[str, Any]) -> bool:
    """A response documented with no body, FastAPI's 422 body or a problem: it is answered as a problem."""
    refs = [str(media.get("schema", {}).get("$ref", "")) for media in response.get("content", {}).values()]
    return all(ref.rsplit("/", 1)[-1] in ("", "Problem", *_FASTAPI_422) for ref in refs)


def install_document(app: FastAPI) -> None:
    """Serve the document at ``/openapi.json``, built once, indented for a person who opens it."""
    body: list[bytes] = []

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response:
        if not body:
            body.append(json.dumps(build_document(app), indent=2, ensure_ascii=False).encode())
        return Response(body[0], media_type="application/json")
