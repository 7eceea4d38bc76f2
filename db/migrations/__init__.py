"""Alembic migrations of the results database (run with ``ocrflow db upgrade``)."""
