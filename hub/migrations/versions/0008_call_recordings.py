"""calls.recordings: every recording of a call in order (a transfer makes one per agent leg), each
``{"file", "agent_extension"}``; an old row's single ``recording`` becomes its one entry

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recordings", JSON, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        one = "jsonb_build_array(jsonb_build_object('file', recording, 'agent_extension', NULL))"
        none = "'[]'::jsonb"
    else:
        one = "json_array(json_object('file', recording, 'agent_extension', NULL))"
        none = "json_array()"
    op.execute(f"UPDATE calls SET recordings = CASE WHEN recording IS NULL OR recording = '' "
               f"THEN {none} ELSE {one} END")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.alter_column("recordings", existing_type=JSON, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("recordings")
