from sqlalchemy import select

from hub.crm.models import Pipeline, Stage
from hub.db import Database, migrate


async def test_fresh_database_has_the_default_pipeline(database: Database) -> None:
    async with database.reading() as s:
        pipeline = (await s.execute(select(Pipeline).where(Pipeline.is_default))).scalar_one()
        stages = (await s.execute(select(Stage).where(Stage.pipeline_id == pipeline.id)
                                  .order_by(Stage.position))).scalars().all()
    assert [st.kind for st in stages] == ["active"] * 5 + ["won", "lost"]
    assert stages[0].name == "Первичный интерес"


async def test_migrate_twice_is_a_no_op(database: Database) -> None:
    await migrate(database.engine)
    await migrate(database.engine)
