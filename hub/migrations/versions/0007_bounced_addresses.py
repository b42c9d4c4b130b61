"""contact_points.bounced_at / bounce_reason: letters to this e-mail address come back

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_points", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounced_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("bounce_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact_points", schema=None) as batch_op:
        batch_op.drop_column("bounce_reason")
        batch_op.drop_column("bounced_at")
