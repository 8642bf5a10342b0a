"""The Parquet lake: where priced LLM calls land, and how they are queried.

Modules, each one concept:

``files``
    The layout on disk (``<lake_dir>/llm_calls/date=YYYY-MM-DD/*.parquet``) and every operation
    on it: atomic file writes, reading and atomically replacing a whole partition, the
    ``lake_lock`` that orders writers, and crash recovery.
``writer``
    ``LakeWriter``, the pipeline's sink: buffers batches in memory, flushes them to files on a
    background thread, refuses with a retryable error when its bounded buffer is full.
``query``
    ``connect`` / ``run_query``: DuckDB over the files through the ``llm_calls`` view, with file
    access narrowed to the lake, write statements refused and a time limit.

Nothing is re-exported here, so importing the writer does not import DuckDB. See README.md in
this folder and docs/sql.md.
"""
