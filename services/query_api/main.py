"""``python -m services.query_api.main --port N``: serve the query_api with uvicorn."""

from libs.infra.serve import serve

from .app import create_app

if __name__ == "__main__":
    serve("query_api", create_app, 8002)
