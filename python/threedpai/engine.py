"""Where bulk work runs: a local process pool by default, or a Dask cluster past one machine.

Both give a ``concurrent.futures.Executor``; simulate, ingest and align take one, so the same
job runs on either without change.

>>> with executor("dask", workers=4) as pool:     # a local Dask cluster of 4 worker processes
...     ingest("archive", "dataset", executor=pool)
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Literal

Kind = Literal["local", "dask"]


@contextmanager
def executor(kind: Kind = "local", workers: int | None = None, address: str | None = None) -> Iterator[Executor]:
    """``local``: a process pool of ``workers`` (default: every core). ``dask``: the Dask scheduler
    at ``address``, or a local cluster of ``workers`` single-threaded processes when none is given."""
    workers = max(1, workers or os.cpu_count() or 1)
    if kind == "local":
        # forkserver: no fork of a process with live threads (progress bars, Arrow's pools)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
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
