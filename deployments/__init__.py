"""ocrflow on a Prefect server: ``prefect.yaml`` describes the deployments, ``deploy`` sets them up.

``deployments.deploy`` creates work pools, the ``gpu`` limit and the deployments, serves them
from one process, or builds the Dask variant of the flow; the CLI's ``deploy`` and ``serve``
commands call it.
"""
