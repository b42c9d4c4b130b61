"""JSON routes under /api/v1, one module per area, each with its documented route table."""
