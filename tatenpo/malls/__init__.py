"""Mall connectors: one module per mall, behind the small interface in base.py.
Connectors talk to the network only; they never touch the database."""
