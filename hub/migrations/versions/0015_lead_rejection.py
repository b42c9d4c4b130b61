"""leads.rejected_at, leads.rejected_reason: a lead rejected from Unsorted (spam, a wrong number)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("rejected_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("rejected_reason", sa.String(length=300), nullable=False, server_default=""))
    with op.batch_alter_table("leads") as batch:  # the default filled the rows there are; the model has none
        batch.alter_column("rejected_reason", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("rejected_reason")
        batch.drop_column("rejected_at")
