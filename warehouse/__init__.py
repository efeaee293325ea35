"""DuckDB warehouse: schema and migrations, the single writer, read paths, views, export."""
