"""The community server: a FastAPI app over a storage interface (SQLite by default)."""
