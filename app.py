"""Entry point for `flask --app app …` and gunicorn (`app:app`)."""
from tatenpo import create_app

app = create_app()
