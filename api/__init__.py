"""FastAPI adapter: `uvicorn api.app:app`."""
