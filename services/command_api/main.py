"""``python -m services.command_api.main --port N``: serve the command_api with uvicorn."""

from libs.infra.serve import serve

from .app import create_app

if __name__ == "__main__":
    serve("command_api", create_app, 8001)
