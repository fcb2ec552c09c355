# The local RingCentral (`python -m sandbox`) for docker-compose.yml's local try; never part
# of the bot's image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PYTHONPATH=/app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY sandbox ./sandbox
COPY templates ./templates
RUN pip install --no-cache-dir . \
    && useradd --system --user-group --uid 10002 --home-dir /app sandbox

USER sandbox
EXPOSE 8090
CMD ["python", "-m", "sandbox", "--host", "0.0.0.0", "--port", "8090"]
