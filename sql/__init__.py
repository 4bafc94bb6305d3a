"""DuckDB feature SQL, shipped as package data (threedpai.features loads it by name)."""
