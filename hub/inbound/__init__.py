"""The inbound journal: a webhook's delivery is committed before it is answered, then taken into the
CRM by a worker. ``journal``: the table, the group-commit writer and the worker's queries;
``driver_store``: the writer's hot INSERT through the database driver; ``worker``: the worker."""
