"""The CRM core: domain services over the database. Knows no channel and no web."""
