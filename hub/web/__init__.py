"""The outermost ring: REST API, HTML views, server-sent events."""
