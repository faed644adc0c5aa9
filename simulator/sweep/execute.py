"""Run sweep tasks on local processes or a Dask cluster, through ONE code path.

Both backends hand a ``concurrent.futures.Executor`` (a ``ProcessPoolExecutor``, or dask.distributed's
``Client.get_executor()``) to ``submit_windowed``, which submits the same pure function (``task.run_task``) a
window at a time and settles each result as it completes. Results are returned ordered by task, never by
completion, so the same tasks give the same list whatever the backend or worker count.

Failures are results too, never dropped:

* a task that raises -> ``Failure(kind="raised")`` with the exception and its remote traceback;
* a local worker process that dies breaks the pool: every task in flight is re-run ALONE in its own process
  (tasks are pure, so a re-run gives the same result); the one that kills its process again is reported
  ``Failure(kind="worker died")`` with the exit code or signal; the rest of the sweep continues on a new pool;
* on Dask the scheduler does the equivalent (it reschedules a task whose worker died and gives up after
  ``distributed.scheduler.allowed-failures`` deaths): reported ``Failure(kind="worker died")`` (KilledWorker);
* a worker running a different stimrig version -> ``Failure(kind="wrong version")``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from rig import __version__
from simulator.sweep.task import TaskOutcome, TaskSpec, run_task

TaskFn = Callable[[TaskSpec], TaskOutcome]
Settle = Callable[["TaskResult"], None]

WORKER_PRELOAD = ["simulator.sweep.task"]
"""Imported once by the forkserver, so each local worker process starts with the simulator already loaded."""


@dataclass(frozen=True)
class Failure:
    kind: str  # "raised" | "worker died" | "wrong version" | "not run"
    error: str  # one line: what happened
    detail: str = ""  # traceback or further text
    worker: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        name = type(exc).__name__
        if name == "KilledWorker":
            return cls("worker died", f"{name}: {_one_line(str(exc))}", _traceback_text(exc))
        return cls("raised", f"{name}: {_one_line(str(exc))}", _traceback_text(exc))


@dataclass(frozen=True)
class TaskResult:
    task: TaskSpec
    outcome: TaskOutcome | None
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.failure is None


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _traceback_text(exc: BaseException) -> str:
    remote = exc.__cause__  # ProcessPoolExecutor attaches the worker's traceback as _RemoteTraceback
    local = "".join(traceback.format_exception(exc)).strip()
    if remote is not None and type(remote).__name__ == "_RemoteTraceback":
        return str(remote).strip()
    return local


def settled(task: TaskSpec, future: Future[TaskOutcome]) -> TaskResult:
    """The result of a finished future: its outcome, or why there is none."""
    exc = future.exception()
    if exc is not None:
        return TaskResult(task, None, Failure.from_exception(exc))
    return checked(task, future.result())


def checked(task: TaskSpec, outcome: TaskOutcome) -> TaskResult:
    if outcome.task != task.task:
        return TaskResult(task, None, Failure("raised", f"worker returned the outcome of task {outcome.task}",
                                              worker=outcome.worker))
    if outcome.version != __version__:
        return TaskResult(task, None, Failure(
            "wrong version", f"worker runs stimrig {outcome.version}, this sweep stimrig {__version__}",
            worker=outcome.worker))
    return TaskResult(task, outcome, None)


def submit_windowed(executor: Executor, tasks: Sequence[TaskSpec], fn: TaskFn, window: int,
                    settle: Settle) -> tuple[list[TaskSpec], list[TaskSpec]]:
    """Submit ``fn(task)`` for each task, at most ``window`` in flight; settle each as it completes.

    Returns (casualties, unsubmitted) if the executor breaks (a worker process died): the tasks in flight then,
    whose futures hold no result, and the tasks never submitted. Both are empty when everything settled.
    """
    queue: Iterator[TaskSpec] = iter(tasks)
    held_back: list[TaskSpec] = []
    inflight: dict[Future[TaskOutcome], TaskSpec] = {}
    casualties: list[TaskSpec] = []
    broken = False

    def fill() -> None:
        nonlocal broken
        while not broken and len(inflight) < window:
            task = next(queue, None)
            if task is None:
                return
            try:
                inflight[executor.submit(fn, task)] = task
            except BrokenProcessPool:
                held_back.append(task)
                broken = True

    try:
        fill()
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: inflight[f].task):
                task = inflight.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    casualties.append(task)
                    broken = True
                else:
                    settle(settled(task, future))
            fill()
    except BaseException:
        for future in inflight:
            future.cancel()
        raise
    return sorted(casualties, key=lambda t: t.task), held_back + list(queue)


# ---- isolated re-runs (after a local worker died) -------------------------------------------------


def _isolated_main(fn: TaskFn, task: TaskSpec, conn: multiprocessing.connection.Connection) -> None:
    try:
        outcome = fn(task)
    except BaseException as exc:
        conn.send(("error", type(exc).__name__, _one_line(str(exc)), traceback.format_exc()))
    else:
        conn.send(("ok", outcome))
    finally:
        conn.close()


def exit_text(code: int | None) -> str:
    if code is None:
        return "worker process died (exit status unknown)"
    if code < 0:
        try:
            return f"worker process killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"worker process killed by signal {-code}"
    return f"worker process exited with code {code} while running the task"


def run_isolated(tasks: Sequence[TaskSpec], fn: TaskFn, parallel: int, settle: Settle, ctx: Any) -> None:
    """Run each task alone in a fresh process (``parallel`` at a time); settle its outcome or how it died."""
    todo = list(tasks)
    running: dict[multiprocessing.connection.Connection, tuple[TaskSpec, Any]] = {}
    try:
        while todo or running:
            while todo and len(running) < parallel:
                task = todo.pop(0)
                receive, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_isolated_main, args=(fn, task, send), daemon=True,
                                   name=f"stimrig-sweep-task-{task.task}")
                proc.start()
                send.close()
                running[receive] = (task, proc)
            for ready in multiprocessing.connection.wait(list(running)):
                assert isinstance(ready, multiprocessing.connection.Connection)
                task, proc = running.pop(ready)
                settle(_isolated_result(task, ready, proc))
    finally:
        for conn, (_, proc) in running.items():
            proc.kill()
            conn.close()


def _isolated_result(task: TaskSpec, conn: multiprocessing.connection.Connection, proc: Any) -> TaskResult:
    try:
        message = conn.recv()
    except (EOFError, OSError):
        message = None
    finally:
        conn.close()
    proc.join()
    if message is None:
        return TaskResult(task, None, Failure("worker died", exit_text(proc.exitcode),
                                              "the worker process died running this task, and again when it was "
                                              "re-run alone", worker=f"pid {proc.pid}"))
    if message[0] == "ok":
        return checked(task, message[1])
    _, name, text, tb = message
    return TaskResult(task, None, Failure("raised", f"{name}: {text}", tb.strip()))


# ---- backends -------------------------------------------------------------------------------------


class Backend(Protocol):
    workers: int

    def prepare(self) -> None: ...

    def describe(self) -> str: ...

    def run(self, tasks: Sequence[TaskSpec], fn: TaskFn, settle: Settle) -> None: ...


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _local_context() -> Any:
    # forkserver: safe with the progress thread running (no fork of a threaded process), and fast: the server
    # imports the simulator once (preload) and forks every worker from that
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not Linux/macOS
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


class LocalProcesses:
    """A pool of local worker processes (default: one per core)."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"expected at least 1 worker, got {workers}")
        self.workers = workers or default_workers()

    def prepare(self) -> None:
        """Nothing to connect to."""

    def describe(self) -> str:
        return f"local processes ({self.workers} worker{'s' if self.workers != 1 else ''})"

    def run(self, tasks: Sequence[TaskSpec], fn: TaskFn, settle: Settle) -> None:
        ctx = _local_context()
        pending = list(tasks)
        while pending:
            pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
            try:
                casualties, pending = submit_windowed(pool, pending, fn, 2 * self.workers, settle)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
            if casualties:
                run_isolated(casualties, fn, self.workers, settle, ctx)


class DaskCluster:
    """A dask.distributed cluster, by scheduler address (``tcp://host:port``) or an existing ``Client``."""

    def __init__(self, address: str | None = None, *, client: Any = None, connect_timeout_s: float = 30.0) -> None:
        if (address is None) == (client is None):
            raise ValueError("give a scheduler address or a client")
        self.address = address
        self._client = client
        self._own_client = False
        self.connect_timeout_s = connect_timeout_s
        self.workers = 0

    def prepare(self) -> None:
        if self._client is None or not self.workers:
            self.connect()

    def connect(self) -> Any:
        """Connect (if given an address) and count the worker threads; OSError/TimeoutError if unreachable."""
        if self._client is None:
            from distributed import Client

            self._client = Client(self.address, timeout=self.connect_timeout_s)
            self._own_client = True
        self._client.wait_for_workers(1, timeout=self.connect_timeout_s)
        self.address = self.address or str(self._client.scheduler.address)
        self.workers = max(1, sum(self._client.nthreads().values()))
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
        self._client = None

    def describe(self) -> str:
        return f"dask cluster {self.address} ({self.workers} worker thread{'s' if self.workers != 1 else ''})"

    def run(self, tasks: Sequence[TaskSpec], fn: TaskFn, settle: Settle) -> None:
        self.prepare()
        client = self._client
        executor = client.get_executor(pure=False)
        casualties, unsubmitted = submit_windowed(executor, tasks, fn, 2 * self.workers, settle)
        for task in [*casualties, *unsubmitted]:  # pragma: no cover - a dask executor does not break
            settle(TaskResult(task, None, Failure("not run", "the dask executor stopped before this task ran")))


def run_tasks(tasks: Sequence[TaskSpec], backend: Backend, *, fn: TaskFn = run_task,
              on_done: Settle | None = None) -> list[TaskResult]:
    """Every task's result (outcome or failure), ordered by task."""
    results: dict[int, TaskResult] = {}

    def settle(result: TaskResult) -> None:
        results[result.task.task] = result
        if on_done is not None:
            on_done(result)

    backend.run(tasks, fn, settle)
    return [results.get(t.task) or TaskResult(t, None, Failure("not run", "no result came back for this task"))
            for t in tasks]
