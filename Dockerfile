# Chat worker for RunPod serverless on an RTX 6000 Ada (48 GB, sm_89).
# The model is NOT baked in and never downloaded at start: mount it (RunPod network
# volume) and point MODEL_PATH at the directory holding Qwen2.5-7B-Instruct safetensors.
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY requirements.txt .
# The CUDA build of the pinned torch first; requirements.txt's torch==2.13.0 is then satisfied.
RUN pip install --upgrade pip \
 && pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128 \
 && pip install -r requirements.txt

COPY handler/ handler/
COPY shared/ shared/
COPY rp_handler.py test_input.json ./

# Production defaults; every one can be overridden in the RunPod endpoint's environment.
ENV MODEL_PATH=/runpod-volume/models/Qwen2.5-7B-Instruct \
    MODEL_DEVICE=cuda \
    MODEL_DTYPE=bfloat16 \
    ATTN_IMPLEMENTATION=sdpa \
    MAX_CONTEXT_TOKENS=8192 \
    MODEL_CACHE_DIR=/runpod-volume/cache/chat-worker \
    ADULT_CONTENT_ENABLED=false \
    RUNPOD_LOG_LEVEL=INFO \
    HOST=0.0.0.0 \
    PORT=8000
# Only WORKER_MODE=http listens (on PORT; runpod.toml's `ports` names the same port).
EXPOSE 8000

# Run as an unprivileged user.
RUN useradd --create-home --uid 1000 worker && chown -R worker /app
USER worker

CMD ["python", "-m", "handler"]
