"""Which routes need a token, read from their dependencies, and checking it before the body is read.

FastAPI reads and parses a route's body model before it resolves the route's
dependencies, so a route guarded by ``CurrentUser`` would read up to
``MEMDB_MAX_BODY_BYTES`` of an anonymous request's body before refusing it.
:class:`AuthenticateFirstRoute` runs :func:`~server.security.auth.authenticate`
first, from the headers alone, at the level the route's own dependencies ask
for (:func:`route_access`): a missing, invalid or revoked token is ``401`` and
a non-admin on an admin route ``403`` with none of the body read (the body
cap then adds ``Connection: close``, so Uvicorn does not drain it either). The
dependencies find the caller already resolved in the request's scope, so a
request pays for authentication once. Nothing here lists paths: a route is
public exactly when none of its dependencies is a bearer scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from server.security.auth import Access, OptionalBearer, authenticate


def dependant_access(dependant: Dependant) -> Access:
    """The most any of ``dependant``'s dependencies (at any depth) asks of the caller."""
    own = dependant.call.access if isinstance(dependant.call, OptionalBearer) else Access.PUBLIC
    return max((own, *(dependant_access(dependency) for dependency in dependant.dependencies)))


def route_access(route: BaseRoute) -> Access:
    """What ``route`` asks of its caller; routes that are not API routes (docs, assets) are public."""
    return dependant_access(route.dependant) if isinstance(route, APIRoute) else Access.PUBLIC


def requires_bearer(route: BaseRoute) -> bool:
    """Whether ``route`` refuses a request without a valid bearer token."""
    return route_access(route) >= Access.TOKEN


class AuthenticateFirstRoute(APIRoute):
    """An API route that authenticates its caller, as its dependencies ask, before its body is read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        access = dependant_access(self.dependant)
        if access is Access.PUBLIC or self.body_field is None:
            # Without a body model FastAPI reads no body before the dependencies run: they check first anyway.
            return handler

        async def authenticated_first(request: Request) -> Response:
            await authenticate(request, access)
            return await handler(request)

        return authenticated_first
