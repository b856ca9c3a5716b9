"""Alembic environment: runs migrations against the URL the service was given."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from hub_service.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is None:  # the alembic command line
        engine = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                    poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
    else:  # the service, with its own engine
        _run(connection)


def _run(connection):
    # batch mode lets later migrations alter SQLite tables
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
