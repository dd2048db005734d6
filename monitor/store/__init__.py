"""The database: tables, engine and migrations, ingest, cursors, accounts, queries."""
