# Minimal Alembic environment used ONLY by scripts/compare-schema-with-reference.sh.
#
# The reference project (swpt_trade) keeps both databases in one Alembic
# history: every revision exposes upgrade_() for the "worker" database (the
# Flask-SQLAlchemy default bind, engine name '') and upgrade_solver() for the
# "solver" bind.  Its own env.py needs the Flask app; this one just takes the
# target URL and the engine name from `-x` arguments and runs the revisions in
# a single transaction, the same way the reference env.py does online.
#
#   alembic -c <ini> -x url=postgresql+psycopg://... -x engine=worker|solver upgrade head
from alembic import context
from sqlalchemy import create_engine

x_args = context.get_x_argument(as_dictionary=True)
url = x_args["url"]
engine_name = {"worker": "", "solver": "solver"}[x_args["engine"]]

engine = create_engine(url)
with engine.connect() as connection:
    with connection.begin():
        context.configure(connection=connection, target_metadata=None)
        context.run_migrations(engine_name=engine_name)
engine.dispose()
