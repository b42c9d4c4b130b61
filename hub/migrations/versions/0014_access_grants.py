"""access_grants: the calls that let a user open a caller's card for a while

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_access_grants_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_access_grants_call_id_calls"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
    )
    op.create_index("ix_access_grants_user", "access_grants", ["user_id", "granted_at"])
    op.create_index(op.f("ix_access_grants_call_id"), "access_grants", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_access_grants_call_id"), table_name="access_grants")
    op.drop_index("ix_access_grants_user", table_name="access_grants")
    op.drop_table("access_grants")
