# Chat worker for RunPod serverless on an RTX 6000 Ada (48 GB, sm_89), served by vLLM (ENGINE=vllm).
# CUDA 13.0: vllm==0.32.0 pins torch==2.13.0, whose PyPI Linux wheel is the CUDA 13.0 build, and vLLM's
# kernels are cu13. The host driver must support CUDA >= 13.0 (driver >= 580): pick CUDA 13.0 or newer
# in the endpoint's allowed CUDA versions (.runpod/hub.json, docs/DEPLOYMENT.md).
# The model: MODEL_NAME (a Hugging Face repo id) from RunPod's cached models or a pre-filled HF_HOME,
# resolved offline; or MODEL_PATH; or baked in at build time with --build-arg BAKE_MODEL_NAME=<repo id>.
FROM nvidia/cuda:13.0.1-base-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# gcc and the Python headers are for run time, not install time: Triton (vLLM's kernels, torch.compile)
# builds its small CUDA launcher stub with the system C compiler on first use. Every package installs from a wheel.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev python3-pip gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY requirements.txt requirements-image.txt ./
# torch==2.13.0 from PyPI is the CUDA 13.0 build vLLM 0.32.0 was built against: no extra index.
RUN pip install --upgrade pip \
 && pip install -r requirements-image.txt

# Optional: bake a model into the image (no network volume, no cached model; a bigger image).
# docker build --build-arg BAKE_MODEL_NAME=Qwen/Qwen2.5-7B-Instruct [--build-arg BAKE_MODEL_REVISION=<commit>] .
ARG BAKE_MODEL_NAME=""
ARG BAKE_MODEL_REVISION=main
RUN mkdir -p /opt/hf-baked \
 && if [ -n "$BAKE_MODEL_NAME" ]; then \
      HF_HUB_OFFLINE=0 HF_HOME=/opt/hf-baked python -c "import sys; from huggingface_hub import snapshot_download; snapshot_download(sys.argv[1], revision=sys.argv[2], allow_patterns=['*.json', '*.safetensors', '*.txt', '*.model', '*.tiktoken', '*.jinja'])" "$BAKE_MODEL_NAME" "$BAKE_MODEL_REVISION"; \
    fi

COPY handler/ handler/
COPY shared/ shared/
COPY rp_handler.py test_input.json ./

# Production defaults; every one can be overridden in the RunPod endpoint's environment.
# MODEL_NAME is the baked model when one was baked, else Qwen2.5-7B-Instruct (RunPod cached models put it
# under /runpod-volume/huggingface-cache, which is HF_HOME here). MODEL_PATH, when set, wins.
ENV ENGINE=vllm \
    MODEL_NAME=${BAKE_MODEL_NAME:-Qwen/Qwen2.5-7B-Instruct} \
    MODEL_REVISION=${BAKE_MODEL_REVISION} \
    HF_HOME=/runpod-volume/huggingface-cache \
    BAKED_HF_HOME=/opt/hf-baked \
    VLLM_CACHE_ROOT=/runpod-volume/cache/vllm \
    MODEL_DEVICE=cuda \
    MODEL_DTYPE=bfloat16 \
    ATTN_IMPLEMENTATION=sdpa \
    MAX_CONTEXT_TOKENS=8192 \
    MODEL_CACHE_DIR=/runpod-volume/cache/chat-worker \
    STREAM_ENABLED=true \
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
