"""examflow's domain: SQLModel tables, pydantic value objects and pure rules.

Nothing here imports Prefect, talks SMTP or reads the clock: time comes in as ``as_of``.
"""

TABLE_MODULES = (
    "models.sittings",
    "models.schools",
    "models.registration",
    "models.fees",
    "models.facts",
    "models.rooms",
    "models.arrangement",
    "models.attendance",
    "models.scores",
    "models.certificates",
    "models.outbox",
    "models.portal_access",
    "models.checkpoint_runs",
    "models.host_requests",
    "models.go_no_go",
)


def all_tables() -> None:
    """Import every table module so that ``SQLModel.metadata`` knows all tables."""
    from importlib import import_module

    for name in TABLE_MODULES:
        import_module(name)
