"""Alembic environment. ``hub.db.migrate`` hands in an open connection; the ``alembic`` command line
(for writing new revisions) connects by itself from ``sqlalchemy.url``."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from hub.crm.models import Base
from hub.migrations.search_objects import search_index_object

target_metadata = Base.metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
        include_name=lambda name, *_: not search_index_object(name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: no sqlalchemy.url to connect to")
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    asyncio.run(run_standalone())
