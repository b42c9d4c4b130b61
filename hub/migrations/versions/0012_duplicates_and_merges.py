"""duplicates and merges: clients.name_key (the name as duplicates are compared) and client_merges
(what a merge moved, to undo it for a day)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.crm.names import name_key

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BATCH = 1000


def upgrade() -> None:
    op.add_column("clients", sa.Column("name_key", sa.String(length=300), nullable=True))
    _fill_name_keys()
    op.create_index(op.f("ix_clients_name_key"), "clients", ["name_key"])
    op.create_table(
        "client_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kept_id", sa.Integer(), nullable=False),
        sa.Column("removed_id", sa.BigInteger(), nullable=False),
        sa.Column("removed", JSON, nullable=False),
        sa.Column("kept_before", JSON, nullable=False),
        sa.Column("moved", JSON, nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.Column("undone_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["kept_id"], ["clients.id"], name=op.f("fk_client_merges_kept_id_clients"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_client_merges_author_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_merges")),
    )
    op.create_index(op.f("ix_client_merges_kept_id"), "client_merges", ["kept_id"])


def _fill_name_keys() -> None:
    bind = op.get_bind()
    clients = sa.table("clients", sa.column("id", sa.Integer()), sa.column("name", sa.String()),
                       sa.column("name_key", sa.String()))
    last = 0
    while True:
        rows = bind.execute(sa.select(clients.c.id, clients.c.name).where(clients.c.id > last)
                            .order_by(clients.c.id).limit(BATCH)).all()
        if not rows:
            return
        for client_id, name in rows:
            bind.execute(sa.update(clients).where(clients.c.id == client_id)
                         .values(name_key=name_key(str(name or ""))))
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index(op.f("ix_client_merges_kept_id"), table_name="client_merges")
    op.drop_table("client_merges")
    op.drop_index(op.f("ix_clients_name_key"), table_name="clients")
    # not a batch (which rebuilds the table on SQLite: dropping "clients" would cascade); SQLite has
    # ALTER TABLE DROP COLUMN since 3.35
    op.drop_column("clients", "name_key")
