"""The PostgreSQL backend: the same table families as SQLite's (bot/store/), one module each,
over an asyncpg pool shared by several replicas. `storage.py` composes them."""
