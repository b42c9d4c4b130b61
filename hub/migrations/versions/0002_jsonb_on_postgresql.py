"""JSON columns become jsonb on PostgreSQL (SQLite keeps JSON text)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_COLUMNS = [
    ("custom_fields", "choices"),
    ("settings", "value"),
    ("clients", "custom"),
    ("notifications", "payload"),
    ("leads", "utm"),
    ("deals", "custom"),
    ("timeline_entries", "payload"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in JSON_COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE jsonb USING "{column}"::jsonb')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in JSON_COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE json USING "{column}"::json')
