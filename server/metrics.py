"""Prometheus metrics: one registry per application, and ``GET /metrics`` to read it.

:class:`Metrics` owns a ``CollectorRegistry`` of its own (``app.state.metrics``,
never the library's global one, so many apps in one process do not collide)
and every metric memdb exports: HTTP requests by method, route template and
status, and their latency; the store's mailbox depth and capacity, commands by
type and outcome with the time each waited in the mailbox and ran (fed by the
actor's observer callback), rows per table (read from the database when
scraped), actor restarts; rate-limited and unauthorised answers; connections closed unanswered
(headers too slow, or room made for another); the process's
own figures (resident memory among them) beside the configured memory limit.
Labels stay bounded: the route is the matched route's template (a path nobody
serves is ``<unmatched>``, an answer given before routing ``<other>``), an unknown method is ``OTHER``, commands are the
store's command classes. ``/metrics`` sits at the root, outside ``/api/v1`` and
the OpenAPI schema, answers in the Prometheus text format, is not rate limited
and is never cached.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import Scope

from server.connection_guard import CLOSE_REASONS
from server.paths import METRICS_PATH
from store.actor import StoreActor
from store.recovery import Recovery
from store.snapshotter import Snapshotter

UNMATCHED = "<unmatched>"
OTHER_METHOD = "OTHER"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})

STORE_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)
"""Seconds: store commands take microseconds, so the default HTTP buckets would put all of them in the first."""


class StoreCollector(Collector):
    """Mailbox depth and capacity and rows per table, read from the actor at each scrape."""

    def __init__(self) -> None:
        self.actor: StoreActor | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return self._families(None)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._families(self.actor)

    @staticmethod
    def _families(actor: StoreActor | None) -> list[GaugeMetricFamily]:
        depth = GaugeMetricFamily("store_queue_depth", "Commands waiting in the store's mailbox.")
        capacity = GaugeMetricFamily("store_queue_capacity", "Commands the store's mailbox holds at most.")
        rows = GaugeMetricFamily("store_rows", "Rows in each table of the store.", labels=["table"])
        if actor is not None:
            depth.add_metric([], actor.depth)
            capacity.add_metric([], actor.capacity)
            # A plain read of a dict on the event loop's thread: the actor is never mid-command here.
            for table, count in sorted(actor.database.counts().items()):
                rows.add_metric([table], count)
        return [depth, capacity, rows]


class PersistenceCollector(Collector):
    """The command log and the last recovery (only when ``MEMDB_DATA_DIR`` is set), read at each scrape."""

    def __init__(self) -> None:
        self.recovery: Recovery | None = None
        self.snapshots: Snapshotter | None = None

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        recovery, snapshots = self.recovery, self.snapshots
        if recovery is None or snapshots is None:
            return []
        last = snapshots.last
        log = recovery.log
        figures = [
            ("store_log_bytes", "Bytes in the command log's segments on disk.", log.total_bytes),
            (
                "store_log_unsynced_bytes",
                "Bytes of the log written but not yet fsynced (what a power cut could lose).",
                log.size - log.synced_size,
            ),
            (
                "store_log_fsync_age_seconds",
                "Seconds since the log was last fsynced.",
                log.sync_age,
            ),
            ("store_log_fsync_seconds", "How long the last fsync of the log took.", log.last_sync_seconds),
            ("store_log_fsyncs", "Fsyncs of the log since start.", log.syncs),
            ("store_log_failures", "Log writes or fsyncs the disk refused since start.", log.failures),
            (
                "store_log_broken",
                "1 once an fsync failed: writes are refused until a restart.",
                int(log.broken is not None),
            ),
            ("store_recovery_seconds", "How long recovery at start took.", recovery.seconds),
            ("store_recovery_records", "Log records replayed at start.", recovery.records),
            ("store_recovery_tails_cut", "Torn or corrupt log tails cut off at start.", len(recovery.cut)),
            ("store_snapshot_age_seconds", "Seconds since the last snapshot finished (or since start).", snapshots.age),
            ("store_snapshot_seconds", "How long the last snapshot took.", 0.0 if last is None else last.seconds),
            ("store_snapshot_rows", "Rows in the last snapshot.", 0 if last is None else last.rows),
            ("store_snapshots", "Snapshots taken since start.", snapshots.taken),
            ("store_snapshot_failures", "Snapshots that failed since start.", snapshots.failures),
        ]
        families = []
        for name, description, value in figures:
            family = GaugeMetricFamily(name, description)
            family.add_metric([], value)
            families.append(family)
        return families


class Metrics:
    """Every metric of one application, in its own registry."""

    def __init__(self, memory_limit_bytes: int) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self._store = StoreCollector()
        registry.register(self._store)
        self._persistence = PersistenceCollector()
        registry.register(self._persistence)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time from receiving a request to finishing its answer, by method and route template.",
            ["method", "route"],
            registry=registry,
        )
        self.rate_limited = Counter("rate_limited_total", "Requests refused with 429 (rate limit).", registry=registry)
        self.auth_failures = Counter(
            "auth_failures_total",
            "Requests answered 401 (missing, invalid or revoked token; bad login).",
            registry=registry,
        )
        self.commands = Counter(
            "store_commands_total",
            "Store commands applied, by command and outcome (ok, error: refused by the store, crash: a bug).",
            ["command", "outcome"],
            registry=registry,
        )
        self.command_wait = Histogram(
            "store_command_wait_seconds",
            "Time a store command waited in the mailbox before it ran.",
            ["command"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.command_run = Histogram(
            "store_command_run_seconds",
            "Time a store command ran.",
            ["command"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.actor_restarts = Counter(
            "store_actor_restarts_total", "Times the store actor's loop died and was restarted.", registry=registry
        )
        self.connections_closed = Counter(
            "connections_closed_total",
            "Connections closed unanswered: slow headers (header_timeout), room made for another (over_capacity).",
            ["reason"],
            registry=registry,
        )
        for reason in CLOSE_REASONS:
            self.connections_closed.labels(reason)  # exported at 0 from the start, so a rate() has a series
        self.memory_limit = Gauge(
            "memdb_memory_limit_bytes",
            "Resident memory at which the store refuses writes that add data (MEMDB_MEMORY_LIMIT_MB).",
            registry=registry,
        )
        self.memory_limit.set(memory_limit_bytes)
        # Each labelled child looked up once: ``labels()`` takes a lock and builds a key per call.
        # As bounded as the labels themselves.
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._command_series: dict[tuple[str, str], tuple[Counter, Histogram, Histogram]] = {}

    def watch_store(self, actor: StoreActor) -> None:
        """Report this actor's mailbox and tables from now on."""
        self._store.actor = actor

    def watch_persistence(self, recovery: Recovery, snapshots: Snapshotter) -> None:
        """Report the command log, snapshots and how recovery went from now on."""
        self._persistence.recovery = recovery
        self._persistence.snapshots = snapshots

    def observe_command(self, command: str, outcome: str, wait_seconds: float, run_seconds: float) -> None:
        """The store actor's observer: called once after each command."""
        series = self._command_series.get((command, outcome))
        if series is None:
            series = self._command_series[command, outcome] = (
                self.commands.labels(command, outcome),
                self.command_wait.labels(command),
                self.command_run.labels(command),
            )
        count, wait, run = series
        count.inc()
        wait.observe(wait_seconds)
        run.observe(run_seconds)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (``route`` is a template or :data:`UNMATCHED`)."""
        method = method if method in METHODS else OTHER_METHOD
        series = self._request_series.get((method, route, status))
        if series is None:
            series = self._request_series[method, route, status] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_duration.labels(method, route),
            )
        count, duration = series
        count.inc()
        duration.observe(seconds)
        if status == 429:
            self.rate_limited.inc()
        elif status == 401:
            self.auth_failures.inc()

    def connection_closed(self, reason: str) -> None:
        """Count one connection the server closed unanswered (``server.connection_guard``'s ``on_close``)."""
        self.connections_closed.labels(reason).inc()

    def actor_restarted(self) -> None:
        """Count one restart of the store actor (the supervisor's ``on_restart``)."""
        self.actor_restarts.inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


OTHER = "<other>"


def route_template(scope: Scope, status: int) -> str:
    """The template of the route that answered (``/api/v1/users/{user_id}``), read after routing.

    Routes are added to the app flat, each with its full path (``server.app``), so the
    route's own template is the whole one. Requests no route answered are ``<unmatched>``
    (404) or ``<other>`` (static files, or refused by middleware before routing), so the
    label set stays bounded.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED if status == 404 else OTHER
    return str(template)


router = APIRouter()


@router.get(METRICS_PATH, include_in_schema=False)
async def scrape(request: Request) -> Response:
    """Every metric, in the Prometheus text format."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
