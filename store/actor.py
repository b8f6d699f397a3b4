"""The storage actor: one asyncio task that owns the database.

Callers put an envelope (command, future, time enqueued) into a bounded
mailbox and await the future. The loop takes one envelope at a time and applies
its command synchronously (it never awaits mid-command), so every command is
atomic with respect to every other. A failing command's error is set on its own
future and the loop goes on. A full mailbox makes callers wait up to
``put_timeout`` and then fail with :class:`StoreOverloaded`. ``close()`` lets
everything already queued run, answers anything left with
:class:`StoreClosed`, and is safe to call twice.

With a command log (``journal``, :mod:`store.log`) every write command is
appended before it is applied and taken back out if it fails; with
``fsync=always`` the loop works in turns (group commit): it applies everything
queued, fsyncs once in a thread, then answers that turn's callers.

Reads may skip the mailbox: :meth:`StoreActor.read` applies a command that does
not write right away, in the caller's own step of the event loop. That sees a
consistent state because the loop applies each command in one step without
awaiting. It is only allowed (:attr:`StoreActor.reads_directly`) while the loop
runs and has no applied-but-unanswered writes (a group commit's fsync in
flight), so a direct read never sees a write its writer has not been told about.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from store import commands as c
from store.database import Database
from store.errors import ActorCrashed, PersistenceFailed, StoreClosed, StoreError, StoreOverloaded
from store.log import CommandLog

logger = logging.getLogger("memdb.store")

Observer = Callable[[str, str, float, float], None]
"""Called after each command with (command name, outcome, seconds queued, seconds running)."""
Watcher = Callable[["c.Command[Any]"], None]
"""Called with each command the actor has applied (whatever its outcome), on the actor's loop."""

_Envelope = tuple["c.Command[Any]", "asyncio.Future[Any]", float]
_Answer = tuple["asyncio.Future[Any]", Any, bool, bool]
"""(future, result or error, succeeded, was logged)"""
MAX_TURN = 1024
"""Commands one group commit covers at most (so a flood of writers still gets answers in bounded batches)."""
T = TypeVar("T")
_STOP = object()


class StoreActor:
    """Owns a :class:`Database` and applies commands to it one at a time."""

    def __init__(
        self,
        database: Database,
        queue_size: int = 1024,
        put_timeout: float = 0.5,
        observer: Observer | None = None,
        journal: CommandLog | None = None,
    ) -> None:
        self.database = database
        self.journal = journal
        """Where write commands are logged before they are applied (``None``: not durable)."""
        self.capacity = queue_size
        self.put_timeout = put_timeout
        self.observer = observer
        self._queue: asyncio.Queue[_Envelope | object] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._syncing = False
        """A group commit's writes are applied and their fsync is in flight (they are not answered yet)."""
        self._watchers: list[Watcher] = []
        self.on_crash: Callable[[BaseException | None], None] | None = None
        """Called (by the event loop) when the loop dies of an error; the supervisor restarts it."""

    @property
    def depth(self) -> int:
        """Commands waiting in the mailbox."""
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def reads_directly(self) -> bool:
        """Whether :meth:`read` may run now: the loop runs and every applied write has been answered."""
        return not self._syncing and not self._closed and self._task is not None and not self._task.done()

    def read(self, command: c.Command[T]) -> T:
        """Apply ``command``, which must not write, now and without the mailbox; its errors raise here.

        Only while :attr:`reads_directly` (callers fall back to :meth:`call`
        otherwise). The observer hears it like any other command, with no time
        queued; watchers do not (a read changes nothing they could be watching).
        """
        if command.writes:
            raise TypeError(f"{type(command).__name__} writes: send it through the mailbox")
        started = time.perf_counter()
        outcome = "ok"
        try:
            return command.apply(self.database)
        except StoreError:
            outcome = "error"
            raise
        except Exception:
            outcome = "crash"
            logger.exception("store command %s failed", type(command).__name__)
            raise
        finally:
            if self.observer is not None:
                _observe(self.observer, type(command).__name__, outcome, 0.0, time.perf_counter() - started)

    def start(self) -> None:
        """Start the loop (again, after a crash: the mailbox and the database carry over)."""
        if self._closed:
            raise StoreClosed
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="memdb-store-actor")
            self._task.add_done_callback(self._finished)
            if self.journal is not None:
                self.journal.start()

    def _finished(self, task: asyncio.Task[None]) -> None:
        if self._closed or task.cancelled() or task.exception() is None:
            return
        logger.error("store actor died", exc_info=task.exception())
        if self.on_crash is not None:
            self.on_crash(task.exception())

    def watch(self, watcher: Watcher) -> None:
        """Show ``watcher`` every command applied from now on, before any other code runs.

        It runs in the same step of the event loop as the command, so no request can
        see the command's effect before the watcher has (caches use this to stay exact).
        """
        self._watchers.append(watcher)

    async def close(self) -> None:
        """Stop taking commands, run those already queued, then stop the loop."""
        if self._closed:
            return
        self._closed = True
        if self.running:
            await self._queue.put(_STOP)
            assert self._task is not None
            await self._task
        self._answer_leftovers()
        if self.journal is not None:
            await self.journal.close()

    async def call(self, command: c.Command[T]) -> T:
        """Send ``command`` and wait for its result (or its error)."""
        if self._closed:
            raise StoreClosed
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        envelope: _Envelope = (command, future, time.perf_counter())
        try:
            self._queue.put_nowait(envelope)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self._queue.put(envelope), self.put_timeout)
            except TimeoutError:
                raise StoreOverloaded(self.put_timeout) from None
            if self._closed and not self.running:
                self._answer_leftovers()
        return await future  # type: ignore[no-any-return]

    async def _run(self) -> None:
        journal = self.journal
        if journal is None or journal.fsync != "always":
            while True:
                envelope = await self._queue.get()
                if envelope is _STOP:
                    return
                self._handle(envelope, None)  # type: ignore[arg-type]
        # Group commit: apply everything queued, fsync once for the whole turn, then answer it.
        while True:
            envelope = await self._queue.get()
            turn: list[_Answer] = []
            try:
                while envelope is not _STOP:
                    self._handle(envelope, turn)  # type: ignore[arg-type]
                    if self._queue.empty() or len(turn) >= MAX_TURN:
                        break
                    envelope = self._queue.get_nowait()
                if any(wrote for _, _, _, wrote in turn) and journal.dirty:
                    self._syncing = True
                    try:
                        await journal.sync()
                    except PersistenceFailed as error:
                        turn = [(f, error if wrote else r, ok and not wrote, wrote) for f, r, ok, wrote in turn]
                    finally:
                        self._syncing = False
            except BaseException:
                for future, _, _, _ in turn:
                    if not future.done():
                        future.set_exception(ActorCrashed("a group commit"))
                raise
            for future, result, ok, _ in turn:
                if future.done():
                    continue
                if ok:
                    future.set_result(result)
                else:
                    future.set_exception(result)
            if envelope is _STOP:
                return

    def _handle(self, envelope: _Envelope, turn: list[_Answer] | None) -> None:
        """Apply one command; answer it now, or (group commit) add its answer to ``turn``."""
        command, future, enqueued = envelope
        if future.done():
            return
        started = time.perf_counter()
        outcome = "ok"
        wrote = False
        try:
            journal = self.journal
            if journal is not None and command.writes:
                result = self._apply_logged(command, journal)
                wrote = True
            else:
                result = command.apply(self.database)
        except StoreError as error:
            outcome = "error"
            answer: _Answer = (future, error, False, False)
        except Exception as error:
            outcome = "crash"
            logger.exception("store command %s failed", type(command).__name__)
            answer = (future, error, False, False)
        except BaseException:
            # Something that ends the loop itself: answer this caller, then let the task die
            # (the supervisor restarts it; the queue and the tables survive).
            future.set_exception(ActorCrashed(type(command).__name__))
            raise
        else:
            answer = (future, result, True, wrote)
        finally:
            for watcher in self._watchers:
                _tell(watcher, command)
        if turn is None:
            if answer[2]:
                future.set_result(answer[1])
            else:
                future.set_exception(answer[1])
        else:
            turn.append(answer)
        if self.observer is not None:
            _observe(self.observer, type(command).__name__, outcome, started - enqueued, time.perf_counter() - started)

    def _apply_logged(self, command: c.Command[Any], journal: CommandLog) -> Any:
        """Log ``command`` (with the time it will see), then apply it; a failed command is taken back out."""
        db = self.database
        now = db.pin_clock()
        try:
            mark = journal.append(command, now)
            try:
                return command.apply(db)
            except BaseException:
                journal.retract(mark)
                raise
        finally:
            db.unpin_clock()

    def _answer_leftovers(self) -> None:
        while not self._queue.empty():
            envelope = self._queue.get_nowait()
            if envelope is _STOP:
                continue
            future = envelope[1]  # type: ignore[index]
            if not future.done():
                future.set_exception(StoreClosed())


def _tell(watcher: Watcher, command: c.Command[Any]) -> None:
    try:
        watcher(command)
    except Exception:
        logger.exception("store watcher failed after %s", type(command).__name__)


def _observe(observer: Observer, name: str, outcome: str, waited: float, ran: float) -> None:
    """Report one command; a failing observer (metrics) must not take the actor down with it."""
    try:
        observer(name, outcome, waited, ran)
    except Exception:
        logger.exception("store observer failed after %s", name)
