# Production image for the app and the worker (docker-compose.yml runs both from it).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True ATIENDE_ENV=production ATIENDE_HOST=0.0.0.0

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 atiende

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY bot ./bot
COPY knowledge ./knowledge
COPY handoff ./handoff
COPY migrations ./migrations
RUN pip install . && if atiende models --help >/dev/null 2>&1; then atiende models install; fi

USER atiende
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["atiende", "serve"]
