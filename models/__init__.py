"""examflow's domain: SQLModel tables, pydantic value objects and pure rules.

Nothing here imports Prefect, talks SMTP or reads the clock: time comes in as ``as_of``.
"""


def all_tables() -> None:
    """Import every table module so that ``SQLModel.metadata`` knows all tables."""
    import models.outbox  # noqa: F401
    import models.tables  # noqa: F401
