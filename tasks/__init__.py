"""Prefect tasks of the ocrflow flows: thin wrappers over ``ingest``, ``craft`` and ``db``."""
