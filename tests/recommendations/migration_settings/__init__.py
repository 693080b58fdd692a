"""Settings of the host project on a database file named by ``BRE_MIGRATE_DB``, with and without beat."""
