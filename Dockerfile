# One image for every service; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md alembic.ini ./
COPY tierroute ./tierroute
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system --uid 10001 tierroute
USER tierroute
EXPOSE 8000
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]
