"""auth_tokens: an ``id`` (the primary key; the token hash stays unique) to list and revoke a token
by, a ``name``, ``last_used_at``; an API token that never expired now expires 90 days from the
upgrade (the default ``[server] token_days``)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_COLUMNS = "token_hash, user_id, kind, csrf_token, created_at, expires_at"


def _old_columns() -> list[SchemaItem]:
    return [
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_auth_tokens_user_id_users",
                                ondelete="CASCADE"),
    ]


def _replace_sqlite_table(items: list[SchemaItem], into: str, select: str) -> None:
    """SQLite cannot change a primary key in place: a new table, the rows copied, then renamed."""
    op.create_table("_auth_tokens_new", *items)
    op.execute(f"INSERT INTO _auth_tokens_new ({into}) SELECT {select} FROM auth_tokens")
    op.drop_table("auth_tokens")
    op.rename_table("_auth_tokens_new", "auth_tokens")
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"], unique=False)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE auth_tokens ADD COLUMN id SERIAL NOT NULL")
        op.add_column("auth_tokens", sa.Column("name", sa.String(length=100), nullable=False,
                                               server_default=""))
        op.alter_column("auth_tokens", "name", server_default=None)
        op.add_column("auth_tokens", sa.Column("last_used_at", sa.DateTime(), nullable=True))
        op.drop_constraint("pk_auth_tokens", "auth_tokens", type_="primary")
        op.create_primary_key("pk_auth_tokens", "auth_tokens", ["id"])
        op.create_unique_constraint("uq_auth_tokens_token_hash", "auth_tokens", ["token_hash"])
    else:
        # INTEGER PRIMARY KEY: SQLite numbers the copied rows itself
        _replace_sqlite_table([
            sa.Column("id", sa.Integer(), nullable=False),
            *_old_columns()[:3],
            sa.Column("name", sa.String(length=100), nullable=False),
            *_old_columns()[3:6],
            sa.Column("last_used_at", sa.DateTime(), nullable=True),
            _old_columns()[6],
            sa.PrimaryKeyConstraint("id", name="pk_auth_tokens"),
            sa.UniqueConstraint("token_hash", name="uq_auth_tokens_token_hash"),
        ], f"{OLD_COLUMNS}, name", f"{OLD_COLUMNS}, ''")
    expires = (datetime.now(UTC) + timedelta(days=90)).replace(tzinfo=None)
    op.get_bind().execute(sa.text("UPDATE auth_tokens SET expires_at = :expires "
                                  "WHERE kind = 'api' AND expires_at IS NULL"), {"expires": expires})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_auth_tokens_token_hash", "auth_tokens", type_="unique")
        op.drop_constraint("pk_auth_tokens", "auth_tokens", type_="primary")
        op.create_primary_key("pk_auth_tokens", "auth_tokens", ["token_hash"])
        op.drop_column("auth_tokens", "last_used_at")
        op.drop_column("auth_tokens", "name")
        op.drop_column("auth_tokens", "id")  # and its sequence
    else:
        _replace_sqlite_table([*_old_columns(), sa.PrimaryKeyConstraint("token_hash", name="pk_auth_tokens")],
                              OLD_COLUMNS, OLD_COLUMNS)
