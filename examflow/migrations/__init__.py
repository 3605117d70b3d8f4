"""Alembic migration environment for examflow's database (see ``examflow.migrate``)."""
