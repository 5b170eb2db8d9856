"""WSGI entry for gunicorn:  gunicorn -c api_server/gunicorn.conf.py 'api_server.wsgi:app'

Settings come from the environment (RAYDEPLOY_CONFIG, RAYDEPLOY_STATE_DIR,
RAYDEPLOY_API_TOKENS, RAYDEPLOY_API_HOST/RAYDEPLOY_API_PORT for the bind in gunicorn.conf.py)."""
from api_server import create_app

app = create_app()
