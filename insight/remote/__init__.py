"""Object storage: logdirs, profiles, checkpoints and model files in `s3://` and `gs://`.

`urls` (which URLs are accepted, no credentials in them), `fs` (the fsspec filesystem and its
errors as `StorageError`), `fetch` (files and folders copied into a local content-addressed
cache, so a remote model is loaded exactly like a local stranger's file).

Example:

>>> from insight.remote import is_remote
>>> is_remote("gs://bucket/runs"), is_remote("/tmp/runs")
(True, False)
"""

from insight.remote.fetch import MAX_FETCH_BYTES, cache_root, fetch, fetch_tree, link_view
from insight.remote.fs import BLOCK_SIZE, filesystem, storage_errors, translate
from insight.remote.urls import SCHEMES, basename, check_url, is_remote, join, parent, scheme

__all__ = ["SCHEMES", "scheme", "is_remote", "check_url", "join", "basename", "parent",
           "filesystem", "storage_errors", "translate", "BLOCK_SIZE", "fetch", "fetch_tree",
           "cache_root", "link_view", "MAX_FETCH_BYTES"]
