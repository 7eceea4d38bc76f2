"""Post-processing in worker processes, so that it scales with cores next to a fast detector.

A page's post-processing (maps to regions, line splitting, tight boxes, orientation) is
mostly small numpy and OpenCV calls that hold the GIL: on threads it stays near one core
whatever their number (docs/performance.md, "The page pipeline"), while a GPU's forward pass
costs less than one page's post-processing. Here each page goes to a process of its own:
its two maps (only the page's area of the batch, the link map the parameters use) and, when
tight boxes or orientation need them, its pixels. What comes back is a
:class:`craft.predictor.FirstPass`; a page found turned is detected again upright by the
caller, which holds the model.

Workers are started with ``spawn`` (the caller's process runs engine threads, which ``fork``
would copy mid-flight), import no torch, and do not import the caller's ``__main__``: a
user's script without an ``if __name__ == "__main__"`` guard would otherwise run again in
every worker (see :func:`_without_main`). Regions equal the inline ones: the same
functions run on the same arrays.
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import spawn
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np

from craft.backends import ScoreMaps
from craft.params import DetectorParams
from craft.predictor import FirstPass, first_pass, link_map
from craft.preprocess import Prepared

__all__ = ["PagePayload", "PostProcessPool"]


@dataclass(frozen=True, slots=True)
class PagePayload:
    """What a worker needs for one page: its share of the batch's maps and timings."""

    text: np.ndarray  # (mh, mw) float32: the page's area of the text map
    link: np.ndarray  # (mh, mw) float32: of the refined link map when with_refiner
    meta: Prepared
    t_pre: float
    forward_s: float  # this page's share of the batch's forward pass
    refine_s: float
    page: np.ndarray | None  # BGR pixels, only when tight boxes or orientation need them

    @classmethod
    def of(
        cls,
        maps: ScoreMaps,
        index: int,
        meta: Prepared,
        t_pre: float,
        page: np.ndarray,
        params: DetectorParams,
    ) -> PagePayload:
        """Page ``index`` of a batch, cut to its own area (padding is never looked at)."""
        mh, mw = meta.padded_hw[0] // 2, meta.padded_hw[1] // 2
        link = link_map(maps, params)
        n = maps.text.shape[0]
        needs_page = params.tight_boxes or params.detect_orientation
        return cls(
            np.ascontiguousarray(maps.text[index, :mh, :mw]),
            np.ascontiguousarray(link[index, :mh, :mw]),
            meta,
            t_pre,
            maps.forward_s / n,
            maps.refine_s / n,
            page if needs_page else None,
        )

    def maps(self) -> ScoreMaps:
        """A batch of one holding this page's maps, as ``first_pass`` reads them."""
        text, link = self.text[None], self.link[None]
        return ScoreMaps(text, link, link, self.forward_s, self.refine_s)

    def arrays(self) -> list[np.ndarray]:
        return [self.text, self.link] + ([] if self.page is None else [self.page])

    def parcel(self, block: SharedMemory) -> Parcel:
        """Copy the arrays into ``block`` (64-byte aligned, one after another)."""
        layout, offset = [], 0
        for array in self.arrays():
            view = np.ndarray(array.shape, array.dtype, buffer=block.buf, offset=offset)
            np.copyto(view, array)
            del view  # no view may outlive the copy: the block is closed later
            layout.append((offset, array.shape, array.dtype.str))
            offset += _aligned(array.nbytes)
        return Parcel(block.name, tuple(layout), self.meta, self.t_pre, self.forward_s,
                      self.refine_s)  # fmt: skip

    @property
    def nbytes(self) -> int:
        return sum(_aligned(a.nbytes) for a in self.arrays())


def _aligned(n: int) -> int:
    return (n + 63) // 64 * 64


@dataclass(frozen=True, slots=True)
class Parcel:
    """A :class:`PagePayload` as sent to a worker: its arrays stay in a shared-memory block
    (pickling them would cost the sender's GIL about a copy per page and per pipe hop)."""

    block: str
    layout: tuple[tuple[int, tuple[int, ...], str], ...]  # (offset, shape, dtype) per array
    meta: Prepared
    t_pre: float
    forward_s: float
    refine_s: float

    def payload(self) -> PagePayload:
        """The arrays copied out of the block, which is closed again at once."""
        block = SharedMemory(self.block)
        try:
            arrays = [
                np.ndarray(shape, np.dtype(dtype), buffer=block.buf, offset=offset).copy()
                for offset, shape, dtype in self.layout
            ]
        finally:
            block.close()
        page = arrays[2] if len(arrays) > 2 else None
        return PagePayload(arrays[0], arrays[1], self.meta, self.t_pre, self.forward_s,
                           self.refine_s, page)  # fmt: skip


_PARAMS: list[DetectorParams] = []  # the worker's parameters, set once by _start


def _start(params_json: str) -> None:
    _PARAMS.append(DetectorParams.model_validate_json(params_json))


def _post(parcel: Parcel | PagePayload) -> FirstPass:
    payload = parcel.payload() if isinstance(parcel, Parcel) else parcel
    page = payload.page if payload.page is not None else np.zeros((1, 1, 3), np.uint8)
    return first_pass(payload.maps(), 0, payload.meta, payload.t_pre, page, _PARAMS[-1])


SHM_DIR = Path("/dev/shm")


def _shm_room() -> int | None:
    """Free bytes where POSIX shared memory lives (None where that is not ``/dev/shm``)."""
    try:
        return shutil.disk_usage(SHM_DIR).free
    except OSError:
        return None


class _Blocks:
    """Shared-memory blocks for parcels, reused (a fresh block costs a page fault per 4 KiB
    on first write); a block too small for a page is replaced by one of the page's size.

    A new block is made only while ``/dev/shm`` has room for it twice over: a container's
    default of 64 MB fills quickly, and writing past a full tmpfs kills the process
    (SIGBUS) instead of raising. Without room, :meth:`take` returns None and the page is
    pickled to its worker instead.
    """

    def __init__(self) -> None:
        self._free: list[SharedMemory] = []
        self._all: dict[str, SharedMemory] = {}
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> SharedMemory | None:
        with self._lock:
            fits = [b for b in self._free if b.size >= nbytes]
            if fits:
                block = min(fits, key=lambda b: b.size)
                self._free.remove(block)
                return block
            if self._free:  # replace the largest free block rather than keep both
                self._retire(max(self._free, key=lambda b: b.size))
            size = max(nbytes, 1 << 20)
            room = _shm_room()
            if room is not None and room < 2 * size:
                return None
            block = SharedMemory(create=True, size=size)
            self._all[block.name] = block
            return block

    def give(self, block: SharedMemory) -> None:
        with self._lock:
            if block.name in self._all:
                self._free.append(block)

    def _retire(self, block: SharedMemory) -> None:
        self._free.remove(block)
        del self._all[block.name]
        block.close()
        block.unlink()

    def close(self) -> None:
        """Free every block (call when no worker uses one any more)."""
        with self._lock:
            for block in self._all.values():
                block.close()
                block.unlink()
            self._all.clear()
            self._free.clear()


_SPAWNING = threading.Lock()


@contextmanager
def _without_main() -> Iterator[None]:
    """Processes spawned inside do not import the caller's ``__main__``.

    ``multiprocessing``'s spawn makes every new process import the parent's main script or
    module (``spawn.get_preparation_data``), so that functions defined there can be
    unpickled; our workers only run ``craft.post_processes``, and importing a script without
    a main guard would run it again (model load, side effects) in each of them. Python
    offers no switch for this, so the main entries are left out of the preparation data
    while our executor starts its processes (it does so inside ``submit`` for spawn).
    """
    real = spawn.get_preparation_data

    def without(name: str) -> dict[str, Any]:
        data = real(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    with _SPAWNING:
        setattr(spawn, "get_preparation_data", without)  # noqa: B010 - a module attribute
        try:
            yield
        finally:
            setattr(spawn, "get_preparation_data", real)  # noqa: B010


class PostProcessPool:
    """``workers`` processes that post-process pages for one set of detector parameters.

    Started on first use and kept until :meth:`close` (a predictor owns one for its life:
    starting a worker costs about half a second). When a worker dies, the pool is replaced
    and the pages it had in flight are sent again once; a page that kills a second worker
    fails with ``BrokenProcessPool``.
    """

    def __init__(self, params: DetectorParams, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.params = params
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.RLock()
        self._blocks = _Blocks()

    def submit(
        self, maps: ScoreMaps, index: int, meta: Prepared, t_pre: float, page: np.ndarray
    ) -> Future[FirstPass]:
        """Post-process page ``index`` of a batch in a worker."""
        payload = PagePayload.of(maps, index, meta, t_pre, page, self.params)
        block = self._blocks.take(payload.nbytes)
        parcel = payload if block is None else payload.parcel(block)
        outcome: Future[FirstPass] = Future()
        if block is not None:
            outcome.add_done_callback(lambda _: self._blocks.give(block))
        self._send(parcel, outcome, retries=1)
        return outcome

    def _send(self, parcel: Parcel | PagePayload, outcome: Future[FirstPass], retries: int) -> None:
        with self._lock:
            executor = self._executor()
            with _without_main():  # workers start inside submit
                try:
                    work = executor.submit(_post, parcel)
                except BrokenProcessPool:
                    self._drop(executor)
                    executor = self._executor()
                    work = executor.submit(_post, parcel)

        def done(work: Future[FirstPass]) -> None:
            if work.cancelled():
                outcome.cancel()
                return
            error = work.exception()
            if isinstance(error, BrokenProcessPool) and retries > 0:
                self._drop(executor)
                self._send(parcel, outcome, retries - 1)
            elif error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(work.result())

        work.add_done_callback(done)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=(self.params.model_dump_json(),),
            )
        return self._pool

    def _drop(self, executor: ProcessPoolExecutor) -> None:
        """Forget a broken executor (its manager thread winds it down by itself)."""
        with self._lock:
            if self._pool is executor:
                self._pool = None

    def close(self) -> None:
        """Stop the workers (pages not started are cancelled)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._blocks.close()
