"""Where bulk work runs: a local process pool by default, or a Dask cluster past one machine.

Both give a ``concurrent.futures.Executor``; simulate, ingest and align take one, so the same
job runs on either without change.

>>> with executor("dask", workers=4) as pool:     # a local Dask cluster of 4 worker processes
...     ingest("archive", "dataset", executor=pool)
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from typing import Any, Literal

Kind = Literal["local", "dask"]


def process_pool(workers: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes started by a fork server: no fork of a process with live
    threads (progress bars, Arrow's pools); ``preload`` modules are imported once, in the server."""
    ctx = multiprocessing.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def completed(pool: Executor, fn: Callable[..., Any], calls: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
    """``fn(*args)`` for every ``args`` of ``calls`` on ``pool``, yielded as each finishes. If one
    fails (or the caller stops early) the rest are cancelled: an executor we do not own would go on
    running them otherwise."""
    futures = [pool.submit(fn, *args) for args in calls]
    try:
        for future in as_completed(futures):
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


@contextmanager
def executor(kind: Kind = "local", workers: int | None = None, address: str | None = None) -> Iterator[Executor]:
    """``local``: a process pool of ``workers`` (default: every core). ``dask``: the Dask scheduler
    at ``address``, or a local cluster of ``workers`` single-threaded processes when none is given."""
    workers = max(1, workers or os.cpu_count() or 1)
    if kind == "local":
        with process_pool(workers) as pool:
            yield pool
    elif kind == "dask":
        from distributed import Client, LocalCluster

        if address:
            with Client(address) as client:
                yield client.get_executor()
        else:
            with (
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as c,
                Client(c) as client,
            ):
                yield client.get_executor()
    else:
        raise ValueError(f"engine must be local or dask, not {kind!r}")
