"""One ingest path for datasets, shared by the seed file and import jobs.

A dataset is users and orders, as a JSON document (``{"users": [...],
"orders": [...]}``, or inside an import request's ``data``) or as NDJSON lines
(``{"section": ..., "record": ...}``). Whatever brings one in — the seed file
at start-up, or an admin's ``POST /api/v1/jobs`` — reads it with the same
pieces: :mod:`~server.ingest.records` (sections, record names, batches, the
wording of a refused record), :mod:`~server.ingest.document` and
:mod:`~server.ingest.ndjson` (streamed readers and checks, so memory never
holds the whole input), :mod:`~server.ingest.dataset_file` (the seed's fast
reader for files in the usual shape) and :mod:`~server.ingest.prepare`
(validation with the API's own models, ready for the store).
"""
