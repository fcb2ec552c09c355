# The bot alone: the image holds bot/, handlers/ and templates/, never the sandbox (the
# local RingCentral is for development and tests; `python -m bot demo` here says so).
# Configuration: bot.config.yaml baked in, secrets and addresses from the environment
# (see README), SQLite on the /data volume, readable by the bot user only, or PostgreSQL
# (BOT_DATABASE=postgresql://..., several replicas: docker-compose.yml; the `postgres` extra).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BOT_DATABASE=/data/bot.sqlite3 BOT_HOST=0.0.0.0 BOT_PORT=8080 PYTHONPATH=/app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY templates ./templates
COPY bot.config.yaml ./
RUN pip install --no-cache-dir '.[postgres]' \
    && useradd --system --user-group --uid 10001 --home-dir /app bot \
    && install -d -m 0700 -o bot -g bot /data

USER bot
VOLUME ["/data"]
EXPOSE 8080
# Ready (database, service user, subscriptions, AI/RingCX pollers) on the address and port the
# bot listens on (BOT_HOST, BOT_PORT; a wildcard address is asked on loopback). A 503 raises,
# which fails the check too.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os,sys,urllib.request; host=os.environ.get('BOT_HOST') or '127.0.0.1'; host='127.0.0.1' if host in ('0.0.0.0','::') else host; host=f'[{host}]' if ':' in host else host; port=os.environ.get('BOT_PORT','8080'); sys.exit(0 if urllib.request.urlopen(f'http://{host}:{port}/readyz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "bot", "run", "--config", "/app/bot.config.yaml"]
