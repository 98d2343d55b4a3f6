# The omnivue image for docker-compose.yml: the locked environment (uv.lock)
# with the project mounted at /opt/omnivue.
FROM python:3.11-slim
ENV UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH \
    SODA_CORE_TELEMETRY_ENABLED=false DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=false
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /opt/omnivue
COPY pyproject.toml uv.lock README.md ./
COPY ingest ./ingest
RUN uv sync --frozen --no-dev --extra postgres
