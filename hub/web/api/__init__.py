"""JSON routes under /api/v1, one module per resource; ``TABLES`` lists every route table."""
