"""The schema's history as Alembic migrations; ``database.Database.start()`` runs them.

Run in code, not from an ``alembic.ini``: ``Database`` builds the ``alembic.config.Config``,
takes the lock and opens the one transaction, and hands the connection to ``env.py`` in
``config.attributes["connection"]``. A new step is a new file in ``versions/`` whose
``down_revision`` is the last one's; a step is never edited once released.
"""
