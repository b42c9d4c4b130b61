"""search_documents: one search over people, deals, tasks and the timeline, kept by triggers

One row per searchable thing: ``words`` (its text, ё written е) for full-text search, ``handles``
(its name, phone digits — also written from 8 —, e-mails, INN, lower-cased, ё written е) for
fragments. The row's id is ``kind code × 2^40 + the thing's id``, so one kind is one id range.
Database triggers on the source tables keep the rows in step in the same transaction as every
change, whichever way it is written (ORM, Core bulk statements, cascades); see docs/decisions.md.

- SQLite: FTS5 tables ``search_words`` (unicode61) and ``search_grams`` (trigram) over the rows
  (external content), kept by triggers on ``search_documents``.
- PostgreSQL: ``pg_trgm``; per kind (partial), a GIN index on ``to_tsvector('russian', words)`` and
  a trigram GIN index on ``handles``.

Existing rows are indexed here (backfill).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND_STEP = 1 << 40
KINDS = {"client": 1, "contact": 2, "lead": 3, "deal": 4, "task": 5,
         "message": 6, "letter": 7, "call": 8, "note": 9}
# timeline entry kind → search kind (other entries — stage changes, tasks, system — are not searched)
ENTRY_KINDS = {"sms": "message", "telegram": "message", "whatsapp": "message", "email": "letter",
               "call": "call", "note": "note"}
SOURCES = ("clients", "contacts", "leads", "deals", "tasks", "timeline_entries", "contact_points")


class Dialect:
    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"

    def e(self, expr: str) -> str:
        """ё written е (and lower-cased on PostgreSQL: SQLite's FTS5 folds case itself)."""
        if self.pg:
            return f"translate(lower({expr}), 'ёЁ', 'ее')"
        return f"replace(replace({expr}, 'ё', 'е'), 'Ё', 'Е')"

    def join(self, *parts: str) -> str:
        return " || ' ' || ".join(f"coalesce({p}, '')" for p in parts)

    def agg(self, expr: str) -> str:
        return f"string_agg({expr}, ' ')" if self.pg else f"group_concat({expr}, ' ')"

    def json(self, column: str, key: str) -> str:
        return f"({column} ->> '{key}')" if self.pg else f"json_extract({column}, '$.{key}')"

    def doc_id(self, kind: str, ref: str) -> str:
        return f"({KINDS[kind] * KIND_STEP} + {ref})"


def _points(d: Dialect, owner_column: str, owner: str) -> str:
    """The owner's phones (digits, and from 8 for +7), e-mails and Telegram user names."""
    value = ("CASE WHEN p.kind = 'phone' THEN substr(p.value, 2) || CASE WHEN p.value LIKE '+7%' "
             "THEN ' 8' || substr(p.value, 3) ELSE '' END ELSE lower(p.value) END")
    return (f"(SELECT {d.agg(value)} FROM contact_points p WHERE p.{owner_column} = {owner} "
            "AND p.kind IN ('phone', 'email', 'telegram_username'))")


def _digits(d: Dialect, expr: str) -> str:
    """A phone number's digits (an E.164 number without its +, and from 8 for +7); anything else (an
    e-mail address) as it is, lower-cased."""
    return (f"lower(CASE WHEN {expr} LIKE '+7%' THEN substr({expr}, 2) || ' 8' || substr({expr}, 3) "
            f"WHEN {expr} LIKE '+%' THEN substr({expr}, 2) ELSE {expr} END)")


def documents(d: Dialect, where: dict[str, str]) -> dict[str, str]:
    """kind → the SELECT of its rows (id, kind, ref_id, words, handles) for the rows ``where[kind]``."""
    entry_kind = "CASE e.kind " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in ENTRY_KINDS.items()) + " END"
    entry_code = "CASE e.kind " + " ".join(
        f"WHEN '{k}' THEN {KINDS[v] * KIND_STEP}" for k, v in ENTRY_KINDS.items()) + " END"
    entry_address = f"coalesce({d.json('e.payload', 'address')}, {d.json('e.payload', 'number')})"
    return {
        "client": f"SELECT {d.doc_id('client', 'c.id')}, 'client', c.id, "
                  f"{d.e(d.join('c.name', 'c.full_name', 'c.inn', 'c.comment'))}, "
                  f"{d.join(d.e('c.name'), d.e('c.full_name'), 'c.inn', _points(d, 'client_id', 'c.id'))} "
                  f"FROM clients c WHERE {where['client']}",
        "contact": f"SELECT {d.doc_id('contact', 'c.id')}, 'contact', c.id, "
                   f"{d.e(d.join('c.name', 'c.position', 'c.comment'))}, "
                   f"{d.join(d.e('c.name'), _points(d, 'contact_id', 'c.id'))} "
                   f"FROM contacts c WHERE {where['contact']}",
        "lead": f"SELECT {d.doc_id('lead', 'l.id')}, 'lead', l.id, {d.e(d.join('l.name', 'l.comment'))}, "
                f"{d.join(d.e('l.name'), _points(d, 'lead_id', 'l.id'))} FROM leads l WHERE {where['lead']}",
        "deal": f"SELECT {d.doc_id('deal', 'x.id')}, 'deal', x.id, {d.e(d.join('x.title'))}, "
                f"{d.e(d.join('x.title'))} FROM deals x WHERE {where['deal']}",
        "task": f"SELECT {d.doc_id('task', 't.id')}, 'task', t.id, "
                f"{d.e(d.join('t.subject', 't.description'))}, {d.e(d.join('t.subject'))} "
                f"FROM tasks t WHERE {where['task']}",
        "entry": f"SELECT {entry_code} + e.id, {entry_kind}, e.id, "
                 f"{d.e(d.join(d.json('e.payload', 'subject'), d.json('e.payload', 'from'), 'e.text'))}, "
                 f"CASE WHEN e.kind = 'telegram' THEN '' ELSE coalesce({_digits(d, entry_address)}, '') END "
                 f"FROM timeline_entries e WHERE e.kind IN ({', '.join(repr(k) for k in ENTRY_KINDS)}) "
                 f"AND {where['entry']}",
    }


UPSERT = ("INSERT INTO search_documents (id, kind, ref_id, words, handles) {select} "
          "ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, ref_id = excluded.ref_id, "
          "words = excluded.words, handles = excluded.handles "
          "WHERE search_documents.words <> excluded.words OR search_documents.handles <> excluded.handles")


def _upsert(d: Dialect, kind: str, ref: str) -> str:
    where = dict.fromkeys(("client", "contact", "lead", "deal", "task", "entry"), "false")
    alias = {"client": "c", "contact": "c", "lead": "l", "deal": "x", "task": "t", "entry": "e"}[kind]
    where[kind] = f"{alias}.id = {ref}"
    return UPSERT.format(select=documents(d, where)[kind]) + ";"


def _delete(kind: str, ref: str) -> str:
    if kind == "entry":
        return f"DELETE FROM search_documents WHERE ref_id = {ref} AND kind IN ('message', 'letter', 'call', 'note');"
    return f"DELETE FROM search_documents WHERE id = {KINDS[kind] * KIND_STEP} + {ref};"


def _owners(d: Dialect, row: str) -> str:
    """Refresh the documents of the contact point's owner (one of client, contact, lead is set)."""
    return " ".join(_upsert(d, kind, f"{row}.{kind}_id") for kind in ("client", "contact", "lead"))


# source table → its kind in ``documents``
TABLE_KIND = {"clients": "client", "contacts": "contact", "leads": "lead", "deals": "deal", "tasks": "task",
              "timeline_entries": "entry"}


def _backfill(d: Dialect) -> None:
    if d.pg:  # a freshly loaded table without statistics would be scanned once per owner
        op.execute("ANALYZE contact_points")
    everything = dict.fromkeys(("client", "contact", "lead", "deal", "task", "entry"), "1 = 1")
    for select in documents(d, everything).values():
        op.execute(f"INSERT INTO search_documents (id, kind, ref_id, words, handles) {select}")


def _sqlite_upgrade(d: Dialect) -> None:
    op.execute("CREATE VIRTUAL TABLE search_words USING fts5(words, content='search_documents', "
               "content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='2 3')")
    op.execute("CREATE VIRTUAL TABLE search_grams USING fts5(handles, content='search_documents', "
               "content_rowid='id', tokenize='trigram')")
    op.execute("INSERT INTO search_words (search_words) VALUES ('rebuild')")
    op.execute("INSERT INTO search_grams (search_grams) VALUES ('rebuild')")
    remove_old = ("INSERT INTO search_words (search_words, rowid, words) VALUES ('delete', old.id, old.words); "
                  "INSERT INTO search_grams (search_grams, rowid, handles) "
                  "VALUES ('delete', old.id, old.handles);")
    add_new = ("INSERT INTO search_words (rowid, words) VALUES (new.id, new.words); "
               "INSERT INTO search_grams (rowid, handles) VALUES (new.id, new.handles);")
    op.execute(f"CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN {add_new} END")
    op.execute(f"CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN {remove_old} END")
    op.execute(f"CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents "
               f"BEGIN {remove_old} {add_new} END")
    for table, kind in TABLE_KIND.items():
        op.execute(f"CREATE TRIGGER search_{table}_ai AFTER INSERT ON {table} BEGIN {_upsert(d, kind, 'new.id')} END")
        # an entry's kind never changes; a client's id neither: the new row's document replaces the old
        op.execute(f"CREATE TRIGGER search_{table}_au AFTER UPDATE ON {table} BEGIN {_upsert(d, kind, 'new.id')} END")
        op.execute(f"CREATE TRIGGER search_{table}_ad AFTER DELETE ON {table} BEGIN {_delete(kind, 'old.id')} END")
    op.execute(f"CREATE TRIGGER search_contact_points_ai AFTER INSERT ON contact_points BEGIN {_owners(d, 'new')} END")
    op.execute("CREATE TRIGGER search_contact_points_au AFTER UPDATE ON contact_points "
               f"BEGIN {_owners(d, 'old')} {_owners(d, 'new')} END")
    op.execute(f"CREATE TRIGGER search_contact_points_ad AFTER DELETE ON contact_points BEGIN {_owners(d, 'old')} END")


def _pg_upgrade(d: Dialect) -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for kind in KINDS:
        op.execute(f"CREATE INDEX ix_search_words_{kind} ON search_documents "
                   f"USING gin (to_tsvector('russian'::regconfig, words)) WHERE kind = '{kind}'")
        op.execute(f"CREATE INDEX ix_search_grams_{kind} ON search_documents "
                   f"USING gin (handles gin_trgm_ops) WHERE kind = '{kind}'")
    for table, kind in TABLE_KIND.items():
        op.execute(f"""CREATE FUNCTION search_index_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN {_delete(kind, 'OLD.id')} ELSE {_upsert(d, kind, 'NEW.id')} END IF;
  RETURN NULL;
END $$""")
        op.execute(f"CREATE TRIGGER search_index AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION search_index_{table}()")
    op.execute(f"""CREATE FUNCTION search_index_contact_points() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {_owners(d, 'OLD')} END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN {_owners(d, 'NEW')} END IF;
  RETURN NULL;
END $$""")
    op.execute("CREATE TRIGGER search_index AFTER INSERT OR UPDATE OR DELETE ON contact_points "
               "FOR EACH ROW EXECUTE FUNCTION search_index_contact_points()")


def upgrade() -> None:
    d = Dialect(op.get_bind().dialect.name)
    op.create_table(
        "search_documents",
        # SQLite: INTEGER, the rowid itself (64 bits there), which the FTS tables point at
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False,
                  nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.BigInteger(), nullable=False),
        sa.Column("words", sa.Text(), nullable=False),
        sa.Column("handles", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_documents")),
    )
    # the access rule "a client with a deal of mine" (access.clients_filter), checked for each hit of
    # an agent's search: without it SQLite walks all of the agent's deals for every client
    op.create_index("ix_deals_client_responsible", "deals", ["client_id", "responsible_id"])
    _backfill(d)
    if d.pg:
        _pg_upgrade(d)
    else:
        _sqlite_upgrade(d)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*TABLE_KIND, "contact_points"):
            op.execute(f"DROP TRIGGER IF EXISTS search_index ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS search_index_{table}()")
    else:
        for table in (*TABLE_KIND, "contact_points", "documents"):
            for suffix in ("ai", "au", "ad"):
                op.execute(f"DROP TRIGGER IF EXISTS search_{table}_{suffix}")
        op.execute("DROP TABLE IF EXISTS search_words")
        op.execute("DROP TABLE IF EXISTS search_grams")
    op.drop_table("search_documents")
    op.drop_index("ix_deals_client_responsible", table_name="deals")
