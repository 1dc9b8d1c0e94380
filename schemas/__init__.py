"""The bundled JSON Schemas, one per document kind, installed as `watcher.schema_files`.

Only data lives here; `watcher.schemas` loads these files and builds validators.
"""
