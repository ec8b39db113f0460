# The chat web app: daphne (on uvloop, `config.serve`) serving config.asgi:application.
# Only the web side's packages are installed (no torch), at the versions requirements.txt pins.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install -c requirements.txt \
        Django channels channels-redis daphne uvloop dj-database-url psycopg psycopg-binary \
        psycopg-pool whitenoise django-axes django-csp Pillow httpx json5 pydantic pybars3 Jinja2 \
        python-dotenv huggingface_hub prometheus-client Authlib requests mcp \
        pypdf python-docx python-pptx openpyxl lxml

COPY manage.py /app/
COPY config /app/config
COPY chatui /app/chatui
COPY templates /app/templates
COPY static /app/static

RUN useradd --create-home --uid 1000 app && mkdir -p /app/var && chown app /app/var
USER app
EXPOSE 8000
CMD ["sh", "-c", "python manage.py migrate --noinput && exec python -m config.serve -b 0.0.0.0 -p 8000 config.asgi:application"]
