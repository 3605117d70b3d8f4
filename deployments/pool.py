"""The process work pool that `examflow deploy` targets."""

from contextlib import suppress

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists


async def ensure_process_pool(name: str) -> None:
    async with get_client() as client:
        with suppress(ObjectAlreadyExists):
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
