"""Bench (d): can everything around a GPU detector keep it busy? A replay detector stands in.

The detector is ``craft.replay``: maps the real fp32 detector recorded once for these very
pages, returned after the H200's measured fast-path time per page (``--seconds-per-page``,
default ``craft.replay.H200_FAST_SECONDS_PER_PAGE``); everything else is the real library
code on a mixed set of pages: the bundled PDF at 150 DPI and ~600 px one-page scans
(``bench/scans.py``). Printed, from one run:

1. pages/s of the bare replay engine (batches of ``--batch-size``) and of the bare predictor
   (engine + resizing + post-processing on every core, pages already in memory);
2. per stage, core-seconds per page (CPU time of the threads doing it, plus poppler's) and
   pages/s with 1 and 2 workers, each stage alone: rasterize/decode (``ingest.iter_pages``),
   post-processing (``CraftPredictor`` with a zero-time engine; its ``StageTimings``),
   database writes (``db.writes.upsert_page`` + ``write_page_regions`` on a SQLite file) and
   overlays (``pipeline.render.render_overlay``: draw, PNG, one thumbnail per document);
   post-processing also in worker processes, to compare with threads;
3. the whole path as a pipeline of this bench's own (reader threads -> batches of equal padded
   size -> ``predict_stream`` -> writer and renderer threads) with 1 and 2 workers per stage,
   and the product's ``pipeline.run.run_documents`` (the CLI's in-process path, the detector
   called per batch as the CLI does) with the stages it reports.

The first run records the maps (the fp32 CPU engine: seconds per page) in the user cache;
later runs reuse them. Timings on a shared machine are only comparable within one run.

    python bench/bench_pipeline.py [--scans 14] [--batch-size 8] [--modes stages,own,pipeline]
"""

from __future__ import annotations

import argparse
import os
import queue
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import numpy as np  # noqa: E402

from craft import DetectorParams, PageResult  # noqa: E402
from craft.predictor import CraftPredictor  # noqa: E402
from craft.preprocess import padded_size, stack_pages  # noqa: E402
from craft.replay import (  # noqa: E402
    H200_FAST_SECONDS_PER_PAGE,
    Recording,
    ReplayBackend,
    replay_predictor,
    replaying,
)
from ingest import Document, IngestOptions, Page, discover, iter_pages  # noqa: E402

GREEN = (0, 255, 0)


def cpu_now() -> float:
    """This process's CPU seconds plus its finished children's (poppler)."""
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + c.ru_utime + c.ru_stime


@dataclass
class Measured:
    pages: int
    wall: float
    cpu: float  # core-seconds spent by the stage

    @property
    def rate(self) -> float:
        return self.pages / self.wall if self.wall else float("inf")

    @property
    def core_s(self) -> float:
        return self.cpu / self.pages if self.pages else 0.0


# -- inputs -------------------------------------------------------------------------------


def make_inputs(folder: Path, scans: int) -> list[Document]:
    from scans import make_scans  # bench/scans.py

    shutil.copy(REPO / "samples" / "natnotes.pdf", folder / "natnotes.pdf")
    make_scans(folder / "scans", scans)
    found = discover([str(folder)])
    return sorted((d for d in found if isinstance(d, Document)), key=lambda d: d.path)


def read_document(document: Document, options: IngestOptions) -> tuple[list[Page], float]:
    """One document's pages and the thread's CPU for it (poppler's is counted per stage)."""
    t0 = time.thread_time()
    pages = [p for p in iter_pages(document, options) if isinstance(p, Page)]
    return pages, time.thread_time() - t0


# -- stages alone --------------------------------------------------------------------------


def timed_map(
    pool: Executor, fn: Callable[..., tuple[Any, float]], items: Sequence[Any], pages: int
) -> tuple[list[Any], Measured]:
    """Run ``fn`` over ``items`` on ``pool``; each call returns (result, its CPU seconds)."""
    children = cpu_children()
    t0 = time.perf_counter()
    out = list(pool.map(fn, items))
    wall = time.perf_counter() - t0
    cpu = sum(c for _, c in out) + cpu_children() - children
    return [r for r, _ in out], Measured(pages, wall, cpu)


def cpu_children() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return c.ru_utime + c.ru_stime


def stage_read(documents: list[Document], options: IngestOptions, workers: int) -> Measured:
    with ThreadPoolExecutor(workers) as pool:
        out, m = timed_map(pool, lambda d: read_document(d, options), documents, 0)
    m.pages = sum(len(p) for p in out)
    return m


def batches_of(pages: Sequence[np.ndarray], params: DetectorParams) -> list[list[np.ndarray]]:
    """Batches of up to ``batch_size`` pages of one padded size, as the page stream forms them."""
    groups: dict[tuple[int, int], list[np.ndarray]] = {}
    for page in pages:
        h, w = page.shape[:2]
        groups.setdefault(padded_size(h, w, params.width, params.mag_ratio), []).append(page)
    size = params.batch_size
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def bare_engine(
    backend: ReplayBackend, batches: list[list[np.ndarray]], p: DetectorParams
) -> Measured:
    stacked = [stack_pages(b, p.width, p.mag_ratio)[0] for b in batches]
    c0, t0 = time.process_time(), time.perf_counter()
    for pixels in stacked:
        backend.run_pixels(pixels, with_refiner=p.with_refiner)
    return Measured(
        sum(len(b) for b in batches), time.perf_counter() - t0, time.process_time() - c0
    )


def run_predictor(
    predictor: CraftPredictor, batches: list[list[np.ndarray]]
) -> tuple[list[PageResult], Measured]:
    """All batches through ``predict_stream``; CPU is the process's (every thread's)."""
    c0, t0 = time.process_time(), time.perf_counter()
    results = [r for res in predictor.predict_stream(batches) for r in res]
    return results, Measured(len(results), time.perf_counter() - t0, time.process_time() - c0)


class Database:
    """A SQLite results file with a run and a document, as the stream writes them."""

    def __init__(self, folder: Path) -> None:
        from db import writes
        from db.migrate import open_results_database

        self.writes = writes
        folder.mkdir(parents=True, exist_ok=True)
        self.engine = open_results_database(f"sqlite:///{folder / 'bench.db'}")
        self.run_id = writes.start_run(self.engine, params={"bench": "pipeline"},
                                       model_name="craft_mlt_25k", model_sha256="0" * 64,
                                       device="replay", precision="replay")  # fmt: skip
        self._number = 0
        self._lock = threading.Lock()
        self.doc_id = writes.upsert_document(
            self.engine, sha256="1" * 64, source_uri="bench", media_type="image/png", size_bytes=1
        )

    def write(self, item: tuple[np.ndarray, PageResult]) -> tuple[None, float]:
        result = item[1]
        t0 = time.thread_time()
        with self._lock:
            self._number += 1
            number = self._number
        page_id = self.writes.upsert_page(self.engine, document_id=self.doc_id,
                                          page_number=number, width=result.width,
                                          height=result.height)  # fmt: skip
        self.writes.write_page_regions(self.engine, run_id=self.run_id, page_id=page_id,
                                       regions=result.regions, timings=result.timings,
                                       orientation=result.orientation)  # fmt: skip
        return None, time.thread_time() - t0


class Renderer:
    """Overlays as the stream renders them: full-size PNG, a thumbnail for a document's first."""

    def __init__(self, folder: Path) -> None:
        from pipeline.render import render_overlay

        self.render = render_overlay
        self.folder = folder
        self._n = 0
        self._lock = threading.Lock()

    def __call__(
        self, item: tuple[np.ndarray, PageResult], thumb: int | None = 640
    ) -> tuple[None, float]:
        image, result = item
        t0 = time.thread_time()
        with self._lock:
            self._n += 1
            n = self._n
        self.render(image, result.regions, self.folder / f"page-{n:04d}.png", GREEN, 4, thumb)
        return None, time.thread_time() - t0


def stage_post_processes(
    zero: ReplayBackend, params: DetectorParams, batches: list[list[np.ndarray]], workers: int
) -> Measured:
    """Post-processing in the product's worker processes (``craft.post_processes``): maps
    and pages pickled to the workers; CPU counted in the parent and the workers."""
    with closing(replay_predictor(zero, params, post_processes=workers)) as predictor:
        run_predictor(predictor, batches[:1])  # workers started outside the timing
        before = workers_cpu(predictor)
        _, m = run_predictor(predictor, batches)
        m.cpu += workers_cpu(predictor) - before
    return m


def workers_cpu(predictor: CraftPredictor) -> float:
    """CPU seconds (user + system, from /proc) of a predictor's live post-processing
    workers, which ``cpu_now`` cannot see (they have not finished); 0 without any."""
    pool = predictor._processes
    executor = pool._pool if pool is not None else None
    total = 0.0
    for pid in list(executor._processes or {}) if executor is not None else []:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def stage_threads(
    fn: Callable[[Any], tuple[Any, float]], items: list[Any], workers: int
) -> Measured:
    with ThreadPoolExecutor(workers) as pool:
        _, m = timed_map(pool, fn, items, len(items))
    return m


# -- the whole path: a pipeline of this bench's own -----------------------------------------


def own_pipeline(
    documents: list[Document],
    options: IngestOptions,
    predictor: CraftPredictor,
    database: Database,
    renderer: Renderer,
    workers: int,
) -> Measured:
    """Readers (``workers`` threads) -> batches of one padded size -> ``predict_stream`` on this
    thread -> writers and renderers (``workers`` threads each), at most 4 batches of pages
    waiting between stages."""
    p = predictor.params
    pages_q: queue.Queue[Page | None] = queue.Queue(maxsize=4 * p.batch_size)

    def read_all() -> None:
        with ThreadPoolExecutor(workers, "bench-read") as pool:
            for pages, _ in pool.map(lambda d: read_document(d, options), documents):
                for page in pages:
                    pages_q.put(page)
        pages_q.put(None)

    sent: deque[list[Page]] = deque()

    def batches() -> Iterator[list[np.ndarray]]:
        groups: dict[tuple[int, int], list[Page]] = {}
        while (page := pages_q.get()) is not None:
            h, w = page.image.shape[:2]
            group = groups.setdefault(padded_size(h, w, p.width, p.mag_ratio), [])
            group.append(page)
            if len(group) == p.batch_size:
                sent.append(groups.pop(padded_size(h, w, p.width, p.mag_ratio)))
                yield [q.image for q in sent[-1]]
        for group in groups.values():
            sent.append(group)
            yield [q.image for q in group]

    c0, t0 = cpu_now() + workers_cpu(predictor), time.perf_counter()
    reader = threading.Thread(target=read_all, name="bench-readers")
    reader.start()
    n = 0
    futures = []
    with (
        ThreadPoolExecutor(workers, "bench-write") as writers,
        ThreadPoolExecutor(workers, "bench-render") as renderers,
    ):
        for results in predictor.predict_stream(batches()):
            for page, result in zip(sent.popleft(), results, strict=True):
                futures.append(writers.submit(database.write, (page.image, result)))
                futures.append(renderers.submit(renderer, (page.image, result), None))
                n += 1
    reader.join()
    for future in futures:
        future.result()  # a failed write or overlay fails the bench
    return Measured(n, time.perf_counter() - t0, cpu_now() + workers_cpu(predictor) - c0)


def documents_first_page(documents: list[Document], options: IngestOptions) -> list[np.ndarray]:
    return [read_document(documents[-1], options)[0][0].image]


def product_pipeline(
    documents: list[Document], options: IngestOptions, params: DetectorParams, folder: Path
) -> tuple[Measured, dict[str, float]]:
    """``pipeline.run.run_documents`` as ``ocrflow run`` calls it without a server."""
    from craft.zoo import craft_predictor
    from db.migrate import open_results_database
    from pipeline.options import OverlayOptions
    from pipeline.run import RunRequest, run_documents
    from pipeline.stream import Hooks

    folder.mkdir(parents=True, exist_ok=True)
    predictor = craft_predictor(params=params)  # the replay one, inside replaying()
    predictor(documents_first_page(documents, options))  # workers started outside the timing
    engine = open_results_database(f"sqlite:///{folder / 'product.db'}")
    request = RunRequest(params=params, ingestion=options, overlay=OverlayOptions(),
                         output_dir=folder / "product-overlays", skip_processed=False)  # fmt: skip
    hooks = Hooks(detect=lambda batch: predictor.predict([p.image for p in batch]))
    c0, t0 = cpu_now() + workers_cpu(predictor), time.perf_counter()
    try:
        summary = run_documents(list(documents), request, engine=engine, info=predictor.info,
                                hooks=hooks, database="sqlite")  # fmt: skip
    finally:
        engine.dispose()
    stages = dict(summary.stages)
    pages = int(stages.get("pages", 0))
    wall = time.perf_counter() - t0
    return Measured(pages, wall, cpu_now() + workers_cpu(predictor) - c0), stages


# -- main ---------------------------------------------------------------------------------


def line(name: str, m: Measured, extra: str = "") -> None:
    print(f"  {name:<34} {m.pages:>4} pages {m.wall:7.2f} s  {m.rate:7.1f} pages/s  "
          f"{m.core_s * 1000:7.1f} core-ms/page {extra}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=14, help="~600 px one-page scans")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seconds-per-page", type=float, default=H200_FAST_SECONDS_PER_PAGE)
    parser.add_argument("--workers", default="1,2", help="workers per stage to compare")
    parser.add_argument("--modes", default="stages,own,pipeline")
    args = parser.parse_args()
    modes = set(args.modes.split(","))
    counts = [int(w) for w in args.workers.split(",")]
    params = DetectorParams.preset(args.preset, batch_size=args.batch_size)
    options = IngestOptions(dpi=150)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; preset "
          f"{args.preset}, batch {args.batch_size}, replay {args.seconds_per_page * 1000:.1f} "
          "ms/page")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        folder = Path(tmp)
        documents = make_inputs(folder, args.scans)
        pages = [p for d in documents for p in read_document(d, options)[0]]
        images = [p.image for p in pages]
        sizes = sorted({(p.image.shape[1], p.image.shape[0]) for p in pages})
        print(f"inputs: {len(documents)} documents, {len(pages)} pages ({len(sizes)} sizes, "
              f"{min(sizes)} to {max(sizes)} px)")  # fmt: skip
        recording = Recording.open()
        t0 = time.perf_counter()
        new = recording.record(images, params)
        print(f"recording: {len(recording)} inputs in {recording.folder.name} "
              f"({new} recorded now, {time.perf_counter() - t0:.0f} s)")  # fmt: skip
        batches = batches_of(images, params)
        backend = ReplayBackend(recording, args.seconds_per_page)
        threads = os.cpu_count() or 1

        print("detector (pages in memory):")
        line("bare replay engine", bare_engine(backend, batches, params))
        procs = max(threads - 1, 1)
        predictor = replay_predictor(backend, params, post_threads=threads)
        results, m = run_predictor(predictor, batches)
        line(f"bare predictor, {threads} post threads", m, f"(misses {backend.misses})")
        with closing(replay_predictor(backend, params, post_processes=procs)) as predictor:
            run_predictor(predictor, batches[:1])  # workers started outside the timing
            before = workers_cpu(predictor)
            _, m = run_predictor(predictor, batches)
            parent = m.core_s * 1000
            m.cpu += workers_cpu(predictor) - before
        line(f"bare predictor, {procs} post processes", m, f"(this process {parent:.1f})")
        post = sum(r.timings.postprocess for r in results) / len(results)
        pre = sum(r.timings.preprocess for r in results) / len(results)
        print(f"  StageTimings per page: preprocess {pre * 1000:.1f} ms, postprocess "
              f"{post * 1000:.1f} ms (wall on its thread)")  # fmt: skip

        print(f"  to keep the detector busy, every other stage together must spend under "
              f"{args.seconds_per_page * 1000:.1f} ms of wall time per page")  # fmt: skip
        pairs = [(img, res) for img, res in zip(images, results, strict=True)]
        if "stages" in modes:
            print("stages alone (core-ms/page from the 1-worker run):")
            zero = ReplayBackend(recording, 0.0)
            for w in counts:
                line(f"rasterize/decode, {w} thread(s)", stage_read(documents, options, w))
            for w in counts:
                _, m = run_predictor(replay_predictor(zero, params, post_threads=w), batches)
                line(f"post-process, {w} thread(s)", m, "(+ resize, map lookup)")
            for w in counts:
                line(
                    f"post-process, {w} process(es)", stage_post_processes(zero, params, batches, w)
                )
            for w in counts:
                db = Database(folder / f"db{w}")
                line(f"db write (SQLite), {w} thread(s)", stage_threads(db.write, pairs, w))
            for w in counts:
                (folder / f"ov{w}").mkdir()
                render = Renderer(folder / f"ov{w}")
                line(f"overlay render, {w} thread(s)", stage_threads(render, pairs, w))
        if "own" in modes:
            print(
                "whole path, this bench's pipeline (readers -> predict_stream -> writers, "
                "renderers):"
            )
            for w, kind in [(w, kind) for w in counts for kind in ("threads", "processes")]:
                own = replay_predictor(backend, params, **{f"post_{kind}": w})
                own(images[:1])  # workers started outside the timing
                out = folder / f"own{w}{kind}"
                busy = backend.pages
                with closing(own):
                    m = own_pipeline(documents, options, own, Database(out), Renderer(out), w)
                busy = (backend.pages - busy) * args.seconds_per_page / m.wall
                line(f"{w} worker(s) per stage, post {kind}", m,
                     f"(process tree; detector busy {busy:.0%})")  # fmt: skip
        if "pipeline" in modes:
            print("whole path, pipeline.run.run_documents (CLI in-process path, replay installed):")
            for kind, workers in [("processes", procs), ("threads", threads)]:
                with replaying(
                    recording, args.seconds_per_page, **{f"post_{kind}": workers}
                ) as engine:
                    m, stages = product_pipeline(documents, options, params, folder / kind)
                busy = engine.pages * args.seconds_per_page / m.wall
                line(f"run_documents, {workers} post {kind}", m,
                     f"(process tree; detector busy {busy:.0%})")  # fmt: skip
                n = max(stages.get("pages", 0), 1)
                each = [f"{k} {v / n * 1000:.1f}" for k, v in stages.items() if k != "pages"]
                print("  its stages, ms/page: " + ", ".join(each))


if __name__ == "__main__":
    main()
