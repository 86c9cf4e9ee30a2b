"""Hub storage: one interface (`base.HubStore`), PostgreSQL and SQLite implementations."""
