"""``DirectRoute`` answers exactly as FastAPI's own handler would, and hands FastAPI what it cannot resolve.

The same endpoints are mounted twice in one app, once as plain FastAPI routes and once as direct
routes, and every request (good, or wrong in each way a client can get it wrong) must get the same
status and the same body from both. memdb's own routes are covered by their API tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import httpx
import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Header, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from server.direct_route import DirectRoute

ID = "7fcd9eb1-a7ca-4415-b66e-b16f508ebad7"


class Item(BaseModel):
    name: Annotated[str, Field(min_length=1)]
    quantity: Annotated[int, Field(ge=1)]


calls: list[str] = []


async def counted(request: Request) -> str:
    calls.append(request.url.path)
    return "counted"


async def tag(value: Annotated[str | None, Header(alias="If-Match")] = None) -> str | None:
    return value


async def paging(
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[str | None, Query(alias="order-by")] = None,
    kinds: Annotated[list[str], Query()] = ["any"],  # noqa: B006  # a default only FastAPI copies
) -> dict[str, object]:
    kinds.append("read")  # changes a list of its own: the default must stay as declared
    return {"per_page": per_page, "order": order, "kinds": kinds}


async def strict(
    needed: Annotated[int, Query()],
    code: Annotated[str, Query(validate_default=True, max_length=2)] = "too long",  # its absence is an error
) -> dict[str, object]:
    return {"needed": needed, "code": code}


async def refuse_teapots(request: Request) -> None:
    if request.headers.get("x-teapot"):
        raise PermissionError  # an error a dependency raises stops the request before validation


Counted = Annotated[str, Depends(counted)]


def build(route_class: type[APIRoute], prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, route_class=route_class, dependencies=[Depends(refuse_teapots)])

    @router.get("/items/{item_id}")
    async def read(
        item_id: UUID, first: Counted, second: Counted, tags: Annotated[str | None, Depends(tag)]
    ) -> Response:
        return JSONResponse({"id": str(item_id), "tag": tags, "deps": [first, second]})

    @router.get("/items")
    async def listing(paged: Annotated[dict[str, object], Depends(paging)], request: Request) -> Response:
        return JSONResponse({**paged, "method": request.method})

    @router.get("/strict")
    async def checked(values: Annotated[dict[str, object], Depends(strict)]) -> Response:
        return JSONResponse(values)

    @router.patch("/items/{item_id}", status_code=200)
    async def change(item_id: UUID, body: Item, tags: Annotated[str | None, Depends(tag)]) -> Response:
        return JSONResponse({"id": str(item_id), "item": body.model_dump(), "tag": tags})

    return router


@pytest.fixture
async def twin() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.exception_handler(PermissionError)
    async def teapot(request: Request, error: PermissionError) -> Response:
        return JSONResponse({"teapot": True}, status_code=418)

    app.include_router(build(APIRoute, "/fastapi"))
    app.router.routes.extend(build(DirectRoute, "/direct").routes)  # flat, as memdb adds its routes
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


REQUESTS: list[tuple[str, str, dict[str, object]]] = [
    ("GET", f"/items/{ID}", {}),
    ("GET", f"/items/{ID}", {"headers": {"If-Match": '"v1"'}}),
    ("GET", "/items/not-a-uuid", {}),
    ("GET", f"/items/{ID}", {"headers": {"x-teapot": "1"}}),
    ("GET", "/items", {}),
    ("GET", "/items?per_page=50", {}),
    ("GET", "/items?per_page=500", {}),
    ("GET", "/items?per_page=many", {}),
    ("GET", "/items?order-by=name&kinds=a&kinds=b", {}),
    ("GET", "/items?order=name&per_page=", {}),
    ("GET", "/strict", {}),
    ("GET", "/strict?needed=1", {}),
    ("GET", "/strict?needed=1&code=ok", {}),
    ("GET", "/strict?needed=x&code=ok", {}),
    ("PATCH", f"/items/{ID}", {"json": {"name": "pen", "quantity": 2}}),
    ("PATCH", f"/items/{ID}", {"json": {"name": "pen", "quantity": 2}, "headers": {"If-Match": '"v2"'}}),
    ("PATCH", f"/items/{ID}", {"json": {"name": "", "quantity": 0}}),
    ("PATCH", "/items/not-a-uuid", {"json": {"name": "", "quantity": 0}}),
    ("PATCH", f"/items/{ID}", {"json": ["not", "an", "object"]}),
    ("PATCH", f"/items/{ID}", {}),
    ("PATCH", f"/items/{ID}", {"content": b'{"name": "pen",', "headers": {"content-type": "application/json"}}),
    ("PATCH", f"/items/{ID}", {"content": b'{"name": "pen", "quantity": 1}'}),
    ("PATCH", f"/items/{ID}", {"content": b'{"name": "pen", "quantity": 1}', "headers": {"content-type": "text/x"}}),
    (
        "PATCH",
        f"/items/{ID}",
        {"content": b'{"name": "pen", "quantity": 1}', "headers": {"content-type": "application/merge-patch+json"}},
    ),
    (
        "PATCH",
        f"/items/{ID}",
        {"content": b'{"name": "pen", "quantity": 3}', "headers": {"content-type": "application/json; charset=utf-8"}},
    ),
]


@pytest.mark.parametrize(("method", "path", "options"), REQUESTS)
async def test_a_direct_route_answers_as_fastapi_does(
    twin: httpx.AsyncClient, method: str, path: str, options: dict[str, object]
) -> None:
    plain = await twin.request(method, f"/fastapi{path}", **options)  # type: ignore[arg-type]
    direct = await twin.request(method, f"/direct{path}", **options)  # type: ignore[arg-type]

    assert (direct.status_code, direct.json()) == (plain.status_code, plain.json())


async def test_every_request_gets_its_own_copy_of_a_changeable_default(twin: httpx.AsyncClient) -> None:
    answers = [(await twin.get("/direct/items")).json()["kinds"] for _ in range(2)]

    assert answers == [["any", "read"], ["any", "read"]]


async def test_a_dependency_used_twice_runs_once_per_request(twin: httpx.AsyncClient) -> None:
    calls.clear()

    answer = await twin.get(f"/direct/items/{ID}")

    assert answer.json()["deps"] == ["counted", "counted"]
    assert calls == [f"/direct/items/{ID}"]


cleaned: list[str] = []
ran: list[str] = []


async def session() -> AsyncIterator[str]:
    yield "session"
    cleaned.append("session")


def plain_function() -> str:  # FastAPI runs it in a thread
    return "plain"


Session = Annotated[str, Depends(session)]
Plain = Annotated[str, Depends(plain_function)]


async def test_what_a_direct_route_cannot_resolve_fastapi_still_does() -> None:
    cleaned.clear()
    ran.clear()
    router = APIRouter(route_class=DirectRoute)

    @router.get("/generator")
    async def generator(value: Session) -> Response:
        return JSONResponse({"value": value})

    @router.get("/sync")
    async def sync(value: Plain) -> Response:
        return JSONResponse({"value": value})

    @router.get("/background")
    async def background(tasks: BackgroundTasks) -> Response:
        tasks.add_task(ran.append, "task")
        return JSONResponse({})

    @router.get("/model")
    async def model() -> dict[str, str]:  # not a Response: FastAPI renders it
        return {"value": "model"}

    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/generator")).json() == {"value": "session"}
        assert (await client.get("/sync")).json() == {"value": "plain"}
        assert (await client.get("/background")).status_code == 200
        assert (await client.get("/model")).json() == {"value": "model"}
        app.dependency_overrides[plain_function] = lambda: "overridden"
        assert (await client.get("/sync")).json() == {"value": "overridden"}

    assert cleaned == ["session"]
    assert ran == ["task"]


async def test_a_direct_route_honours_dependency_overrides() -> None:
    app = FastAPI()
    for router in (build(APIRoute, "/fastapi"), build(DirectRoute, "/direct")):
        app.include_router(router)  # included routes carry the app as their overrides provider
    app.dependency_overrides[paging] = lambda: {"per_page": 7}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        plain = await client.get("/fastapi/items?per_page=500")
        direct = await client.get("/direct/items?per_page=500")

    assert direct.json() == plain.json() == {"per_page": 7, "method": "GET"}
