# The bot alone (not the sandbox). Configuration: bot.config.yaml baked in, secrets and
# addresses from the environment (see README), SQLite on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BOT_DATABASE=/data/bot.sqlite3 BOT_HOST=0.0.0.0 BOT_PORT=8080 PYTHONPATH=/app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY sandbox ./sandbox
COPY templates ./templates
COPY bot.config.yaml ./
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /app bot \
    && mkdir -p /data && chown bot /data

USER bot
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "bot", "run", "--config", "/app/bot.config.yaml"]
