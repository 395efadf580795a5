"""Alembic environment for the journal (run by the install and update triggers)."""
from alembic import context
from sqlalchemy import create_engine

from powersync_plugin.adapters.journal_schema import metadata

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
