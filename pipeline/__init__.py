"""The page pipeline: documents in, regions in SQL and overlays out, as a plain library.

Knows no Prefect: the ``ocr-documents`` flow drives it (detection batches as Prefect tasks,
artifacts, the run's log) and ``ocrflow run`` calls it directly when no server is configured.

Modules, in the order a page meets them: ``rasterize`` (reader processes), ``stream`` (the
cross-document page stream), ``store`` (the results database, retried), ``render`` (overlays);
``run`` is a whole run (``run_documents``), ``documents`` one document's state, ``summary``
what a run returns. Nothing is imported here: reader processes import ``pipeline.rasterize``
alone, without the detector or the database.
"""
