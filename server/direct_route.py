"""Routes that resolve their own dependencies: :class:`DirectRoute`, for the busiest paths.

FastAPI resolves a route's dependencies per request through a general machine
(cache keys, security scopes, generator dependencies, overrides, threads for
plain functions): in memdb's profile it was a third of an authenticated
``GET /users/{id}``. A :class:`DirectRoute` reads its dependant once, when the
route is built, and when every dependency is an ``async`` function of the
request and of path, query or header parameters (as memdb's are: the caller,
the store, the list query, ``If-Match``, the JSON content-type check), it
answers through a handler that does the same work in the same order: the
caller authenticated before the body is read
(:class:`~server.security.access.AuthenticateFirstRoute`), the body read and
decoded as FastAPI does, the dependencies called in declaration order (each
once per request), the parameters and body validated by FastAPI's own
functions (an optional parameter the request does not name takes its default,
worked out once: :class:`_Params`), every error collected into one
``RequestValidationError``. The endpoint must return a ``Response`` (memdb's
render their own). The OpenAPI document is built from the same signature, so
it does not change. A route with anything else (a generator dependency, a
``Response`` or ``BackgroundTasks`` parameter, security scopes, a form body)
or an app with dependency overrides is handled by FastAPI, as before.
"""

from __future__ import annotations

import email.message
import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

try:  # FastAPI's own reading of a parameter's keys; without them every parameter goes through FastAPI
    from fastapi.dependencies.utils import _get_param_aliases, _get_param_model
except ImportError:  # pragma: no cover - older FastAPI
    _get_param_aliases = _get_param_model = None  # type: ignore[assignment]

from server.security.access import AuthenticateFirstRoute, dependant_access
from server.security.auth import Access, authenticate

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_UNDEFINED: Any = PydanticUndefined
"""FastAPI's "no body" (what its own handler hands the body validation)."""
_KEPT_AS_IS = (int, float, str, bytes, bool, type(None))
"""Defaults that ``deepcopy`` hands back as they are, so one object serves every request."""


@dataclass(frozen=True, slots=True)
class _Params:
    """Query or header parameters, with what an absent one resolves to worked out once.

    FastAPI's ``request_params_to_args`` inspects each field's annotation and aliases on every
    request; for an optional parameter the request does not name, all that comes to is a copy of
    its default (when the default is not validated). Those are answered here from the default
    itself; every parameter the request names, or whose default needs more, still goes through
    FastAPI, so values and errors are the same.
    """

    fields: list[Any]
    defaults: tuple[tuple[Any, str, tuple[str, ...], Any], ...]
    """``(field, name, request keys, default)`` of each parameter whose absence is its plain default."""

    def resolve(self, received: Any) -> tuple[dict[str, Any], list[Any]]:
        """The values and validation errors ``request_params_to_args`` gives for ``received``."""
        if not self.defaults:
            return request_params_to_args(self.fields, received)
        values: dict[str, Any] = {}
        named = []
        for field, name, keys, default in self.defaults:
            if any(key in received for key in keys):
                named.append(field)
            else:
                values[name] = default
        if len(self.defaults) < len(self.fields):  # others too: FastAPI reads them all, in their order
            named = [field for field in self.fields if field.name not in values]
        found, errors = request_params_to_args(named, received)
        values.update(found)
        return values, errors


def _absent_default(field: Any) -> tuple[Any, str, tuple[str, ...], Any] | None:
    if _get_param_aliases is None:
        return None
    info = field.field_info
    if _get_param_model(field) is not None or info.is_required() or info.validate_default:
        return None
    if type(field.default) not in _KEPT_AS_IS:
        return None
    keys = tuple(key for _, key in _get_param_aliases(field))
    return field, field.name, keys, field.default


def _params(fields: list[Any]) -> _Params:
    defaults = tuple(default for default in map(_absent_default, fields) if default is not None)
    return _Params(fields, defaults)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What resolving one dependant takes: its dependencies, then its own parameters."""

    steps: tuple[_Step, ...]
    path_params: tuple[tuple[str, str, Any], ...]
    """``(name, alias, field)`` of each path parameter (a plain value: the route's pattern always captures it)."""
    query_params: _Params
    header_params: _Params
    request_name: str | None

    @property
    def request_only(self) -> bool:
        """Whether the request is all this dependant takes (memdb's caller, store and content-type checks)."""
        return not (self.steps or self.path_params or self.query_params.fields or self.header_params.fields)


@dataclass(frozen=True, slots=True)
class _Step:
    call: Callable[..., Awaitable[Any]]
    name: str | None
    plan: _Plan
    use_cache: bool


def _is_async(call: Any) -> bool:
    # A callable instance (memdb's bearer schemes) is awaited through its ``__call__``.
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def _plain_path_param(field: Any) -> tuple[str, str, Any] | None:
    """``(name, alias, field)`` for a path parameter validated as one value, else ``None``."""
    annotation = field.field_info.annotation
    if typing.get_origin(annotation) is not None:  # a list, a union: FastAPI's general path
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return None
    return field.name, field.alias, field


def plan_for(dependant: Dependant, *, top: bool = False) -> _Plan | None:
    """How to resolve ``dependant`` directly, or ``None`` if it needs something only FastAPI does."""
    if (
        dependant.cookie_params
        or (dependant.body_params and not top)
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or dependant.concurrency is not None
    ):
        return None
    steps = []
    for sub in dependant.dependencies:
        if sub.call is None or not _is_async(sub.call):
            return None
        plan = plan_for(sub)
        if plan is None:
            return None
        steps.append(_Step(sub.call, sub.name, plan, sub.use_cache))
    path_params = tuple(_plain_path_param(field) for field in dependant.path_params)
    if None in path_params:
        return None
    return _Plan(
        tuple(steps),
        path_params,  # type: ignore[arg-type]  # no None in it: checked above
        _params(dependant.query_params),
        _params(dependant.header_params),
        dependant.request_param_name,
    )


async def _resolve(plan: _Plan, request: Request, solved: dict[Any, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The values of ``plan``'s parameters and the validation errors, as ``solve_dependencies`` gives them."""
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for step in plan.steps:
        if step.use_cache and step.call in solved:
            value = solved[step.call]
        else:
            if step.plan.request_only:
                arguments = {} if step.plan.request_name is None else {step.plan.request_name: request}
            else:
                arguments, failures = await _resolve(step.plan, request, solved)
                if failures:
                    errors.extend(failures)
                    continue
            value = await step.call(**arguments)
            solved.setdefault(step.call, value)
        if step.name is not None:
            values[step.name] = value
    if plan.path_params:
        received = request.path_params
        for name, alias, field in plan.path_params:
            value, failures = field.validate(received[alias], values, loc=("path", alias))
            if failures:
                errors.extend(failures)
            else:
                values[name] = value
    if plan.query_params.fields:
        found, failures = plan.query_params.resolve(request.query_params)
        values.update(found)
        errors.extend(failures)
    if plan.header_params.fields:
        found, failures = plan.header_params.resolve(request.headers)
        values.update(found)
        errors.extend(failures)
    if plan.request_name is not None:
        values[plan.request_name] = request
    return values, errors


def _is_json(content_type: str) -> bool:
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def _read_body(request: Request, strict_content_type: bool) -> Any:
    """The request's body as FastAPI's handler reads it: decoded JSON, raw bytes, or nothing."""
    try:
        raw = await request.body()
        if not raw:
            return _UNDEFINED
        content_type = request.headers.get("content-type")
        if (not content_type and not strict_content_type) or (content_type and _is_json(content_type)):
            return await request.json()
        return raw
    except json.JSONDecodeError as error:
        invalid = {"type": "json_invalid", "loc": ("body", error.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**invalid, "ctx": {"error": error.msg}}], body=error.doc) from error
    except HTTPException:
        raise
    except Exception as error:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from error


def _returns_response(call: Callable[..., Any]) -> bool:
    try:
        returned = typing.get_type_hints(call).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def _serve(handler: Handler, framework_app: ASGIApp) -> ASGIApp:
    """The route's ASGI app: ``handler``'s response, sent.

    FastAPI's own (``request_response``) opens two exit stacks per request for dependencies that
    yield, which a direct route has none of, and hands errors to the app's exception handlers,
    which the app's exception middleware does just the same one layer out. With dependency
    overrides set the request goes through FastAPI's app.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if getattr(scope.get("app"), "dependency_overrides", None):
            await framework_app(scope, receive, send)
            return
        response = await handler(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


class DirectRoute(AuthenticateFirstRoute):
    """An API route that resolves its dependencies itself when they are simple enough (see the module)."""

    _direct: Handler | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._direct is not None and getattr(self, "max_body_size", None) is None:
            self.app = _serve(self._direct, self.app)

    def get_route_handler(self) -> Handler:
        fallback = super().get_route_handler()
        plan = plan_for(self.dependant, top=True)
        body_field = self.body_field
        if (
            plan is None
            or not _is_async(self.endpoint)
            or not _returns_response(self.endpoint)
            or (body_field is not None and isinstance(body_field.field_info, params.Form))
        ):
            return fallback
        endpoint = self.endpoint
        access = dependant_access(self.dependant)
        authenticate_first = body_field is not None and access is not Access.PUBLIC
        body_params = self.dependant.body_params
        embed_body_fields: bool = self._embed_body_fields
        strict = bool(getattr(self.strict_content_type, "value", self.strict_content_type))

        async def direct(request: Request) -> Response:
            if getattr(request.app, "dependency_overrides", None):  # tests' overrides: FastAPI applies them
                return await fallback(request)
            if authenticate_first:
                await authenticate(request, access)
            body = _UNDEFINED if body_field is None else await _read_body(request, strict)
            values, errors = await _resolve(plan, request, {})
            if body_params:
                found, failures = await request_body_to_args(body_params, body, embed_body_fields)
                values.update(found)
                errors.extend(failures)
            if errors:
                raise RequestValidationError(errors, body=None if body is _UNDEFINED else body)
            response: Response = await endpoint(**values)
            return response

        self._direct = direct
        return direct
