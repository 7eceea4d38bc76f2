"""The ``ocrflow`` command line: Typer commands over ``flows/``, ``db/`` and ``deployments/``.

Modules: ``app`` (the Typer app and the detect/run/demo/export-onnx commands), ``options``
(shared options and the command classes), ``db``, ``query`` and ``deploy`` (command groups
mounted on the app), ``query_output`` (tables, CSV, JSON) and ``runner`` (the flow run path).
"""
