"""Developer scripts (importable so that tests can reuse their logic)."""
