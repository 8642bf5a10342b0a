"""The Parquet lake: where priced LLM calls land, and how they are queried.

Modules, each one job:

``layout``
    The layout on disk (``<lake_dir>/llm_calls/date=YYYY-MM-DD/*.parquet``): paths, partitions,
    listing them, what a file holds (``conform``), reading a partition back.
``locking``
    ``lake_lock``, which orders writers: shared per flush, exclusive for rewrites.
``publish``
    ``write_files``: atomic write + rename + fsync, the spool seqs in each file's footer.
``swap``
    ``replace_partition`` / ``swap_partition``: a partition's files replaced at once (reprice,
    compaction).
``recovery``
    What a start needs after a crash: repair, and which spool records the lake holds.
``seqs``
    ``SeqSet``, the set of spool seqs a file's footer names.
``writer``
    ``LakeWriter``, the pipeline's durable sink: buffers batches in memory, flushes them to files
    on a background thread, refuses with a retryable error when its bounded buffer is full.
``query``
    ``connect`` / ``run_query``: DuckDB over the files through the ``llm_calls`` view, with file
    access narrowed to the lake, write statements refused and a time limit.

The jobs that rewrite partitions (reprice, compaction) are in ``otelcost.jobs``. Nothing is
re-exported here, so importing the writer does not import DuckDB. See README.md in this folder
and docs/sql.md.
"""
