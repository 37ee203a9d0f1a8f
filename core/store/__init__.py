"""Storage layer: the workspace folder, its lock and DuckDB, paths, the SQL sandbox and queries."""
