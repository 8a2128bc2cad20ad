"""The enhancement service: policy -> cache -> model -> clean-up -> compose -> compress -> score.

For any valid input that the policy allows, the caller gets a usable prompt: when the
model fails, times out or answers unusably, the deterministic rule-based path composes
one from the caller's words and the profile. It returns an `Enhancement`; the wire fields
are the adapter's (handler/actions/enhance.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace

from shared.engine import Engine, GenerationParams, Message
from shared.enhance import compose as c
from shared.enhance.profiles import Profile, Profiles
from shared.enhance.result import ENTRY_VERSION, Enhancement, Source, TokenBudget, from_entry, to_entry
from shared.enhance.score import groups_present, quality_score
from shared.enhance.status import EnhanceStatus, JobTypeFacts
from shared.enhance.text import REFUSALS, clean_model_output, content_words, latin_ratio, missing_words
from shared.enhance.tokens import count_for
from shared.errors import ContextOverflow, EngineError, InvalidInput, check_length
from shared.policy import ContentPolicy, JudgeInput
from shared.schemas.enhance import EnhanceRequest
from shared.settings import Settings
from shared.store import Store

log = logging.getLogger(__name__)
# v2: exact prompts in the key (v1 normalised them and served another caller's body);
# v3: entries are serialised Enhancements, not wire bodies (a v2 body is never read back)
CACHE_VERSION = ENTRY_VERSION


@dataclass
class Draft:
    text: str | None  # cleaned model output, None for the rule-based path
    source: Source
    warning: str | None = None


class EnhanceService:
    def __init__(
        self, engine: Engine, store: Store, policy: ContentPolicy, settings: Settings, profiles: Profiles
    ) -> None:
        self.engine, self.store, self.policy = engine, store, policy
        self.settings, self.profiles = settings, profiles
        self.model_timeout_s = min(settings.generation_timeout_s, 60.0)
        self.model_name = engine.info().model_name  # part of every cache key; read once, off the hot path

    async def enhance(self, req: EnhanceRequest) -> Enhancement:
        started = time.perf_counter()
        profile = self._profile(req)
        context_text = self._context_text(req)
        policy_texts = [req.prompt, context_text, req.system_prompt or ""]  # all of it reaches the model
        # Off the event loop: a maximum-size system prompt and context take the policy a while.
        found = await asyncio.to_thread(self.policy.enforce, policy_texts, action="enhance")
        # Adult mode is the caller's request: read from the prompt only, never from the platform's
        # system prompt ("never produce nsfw") or the context; the minor check above read all of it.
        mine = self.policy.assess([req.prompt])
        adult = mine.sexual or mine.adult_detected
        adult_mode = adult and self.policy.adult_enabled
        shown = JudgeInput(req.prompt, req.system_prompt or "", [context_text])  # the prompt whole and first
        await self.policy.confirm(shown, found, action="enhance", adult_mode=adult_mode)
        key = self.cache_key(req, profile, adult_mode)
        if self.settings.enhance_cache_size > 0:
            # An entry this version cannot read back (damaged, another format) is a miss, in the store's
            # stats too; the put below replaces it.
            hit = await self.store.cache_get(key, from_entry)
            if hit is not None:  # cache hits never touch the engine, but are judged again like new output
                self.policy.enforce([*policy_texts, hit.enhanced_prompt], "enhance", "output")
                return hit
        draft = await self._draft(req, profile, adult_mode, key, context_text)
        built = self._build(req, profile, draft, adult, adult_mode, context_text)
        result = replace(built, generation_time_s=time.perf_counter() - started)
        if draft.warning is None and self.settings.enhance_cache_size > 0:
            await self.store.cache_put(key, to_entry(result))  # fallbacks are not cached: the model gets another try
        return result

    def _profile(self, req: EnhanceRequest) -> Profile:
        s = self.settings
        check_length("prompt", req.prompt, s.max_prompt_chars)
        check_length("system_prompt", req.system_prompt, s.max_system_prompt_chars)
        profile = self.profiles.get(req.job_type)
        if profile is None:
            valid = ", ".join(self.profiles.names())
            raise InvalidInput(f"unknown job_type '{req.job_type}'; valid: {valid}", field="job_type")
        return profile

    def _context_text(self, req: EnhanceRequest) -> str:
        """The context as the model sees it and the policy reads it: indented 'key: value' lines,
        every string as written (JSON escapes would turn '\\nnaked' into 'nnaked'). The size limit
        (MAX_CONTEXT_CHARS) is on the JSON, as the caller sent it."""
        if not req.context:
            return ""
        check_length("context", json.dumps(req.context, ensure_ascii=False), self.settings.max_context_chars)
        return "\n".join(c.context_lines(req.context))

    async def _check_context(self, req: EnhanceRequest, messages: list[Message], max_tokens: int) -> None:
        """The prompt must leave room for the reply in the model's context, like chat's; counted
        off the event loop. An engine that cannot count leaves the check to generate's fallback."""
        try:
            needed = await asyncio.to_thread(self.engine.count_chat_tokens, messages)
        except EngineError:
            return
        budget = self.engine.context_length - max_tokens
        if needed > budget:
            sizes = {"prompt": len(req.prompt), "system_prompt": len(req.system_prompt or "")}
            sizes["context"] = len(messages[-1].content) - len(req.prompt)
            field = max(sizes, key=lambda name: sizes[name])
            raise ContextOverflow(
                f"the enhancement prompt needs {needed} tokens but only {max(budget, 0)} fit the "
                f"{self.engine.context_length}-token context (most of it in '{field}')",
                field=field,
            )

    def cache_key(self, req: EnhanceRequest, profile: Profile, adult_mode: bool) -> str:
        # Exact texts: a cached body carries its caller's own prompt and tag split, so only the very same
        # request may receive it. An absent system prompt and an empty one are different requests.
        system = None if req.system_prompt is None else hashlib.sha256(req.system_prompt.encode()).hexdigest()
        digest = hashlib.sha256(
            json.dumps(
                [
                    req.prompt,
                    req.job_type,
                    req.quality,
                    req.mode,
                    req.enhancement_type,
                    system,
                    json.dumps(req.context, sort_keys=True) if req.context else "",
                    req.seed,
                    self.model_name,
                    profile.version,
                    adult_mode,
                    self.policy.digest,  # the lists' version: a list change makes earlier bodies unreachable
                ],
                ensure_ascii=False,
            ).encode()
        ).hexdigest()
        return f"enh:v{CACHE_VERSION}:{digest[:40]}"

    async def _draft(
        self, req: EnhanceRequest, profile: Profile, adult_mode: bool, key: str, context_text: str
    ) -> Draft:
        system = req.system_prompt  # the platform's own prompt is used verbatim
        if system is None:
            system = profile.system_prompt + (f" {profile.adult_system_addition}" if adult_mode else "")
        user = req.prompt + (f"\nContext: {context_text}" if context_text else "")
        seed = req.seed if req.seed is not None else int(key.rsplit(":", 1)[1][:8], 16)
        params = GenerationParams(
            max_tokens=profile.max_new_tokens,
            temperature=profile.temperature,
            top_p=0.9,
            top_k=40,
            repetition_penalty=1.15,
            seed=seed,
        )
        source: Source = "edge_function" if req.system_prompt is not None else "worker_fallback"
        shots = [
            m for ex in profile.examples for m in (Message("user", ex["input"]), Message("assistant", ex["output"]))
        ]
        messages = [Message("system", system), *shots, Message("user", user)]
        await self._check_context(req, messages, params.max_tokens)
        try:
            result = await asyncio.wait_for(self.engine.generate(messages, params), self.model_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any engine failure falls back; the job still succeeds
            log.warning("enhancement model call failed (%s); rule-based fallback", type(exc).__name__)
            return Draft(None, "rule_based", f"model unavailable ({type(exc).__name__}); rule-based enhancement used")
        cleaned = clean_model_output(result.text)
        problem = self._unusable(req.prompt, cleaned)
        if problem:
            return Draft(None, "rule_based", f"model output unusable ({problem}); rule-based enhancement used")
        return Draft(cleaned, source)

    @staticmethod
    def _unusable(prompt: str, text: str) -> str | None:
        if len(text.split()) < 2:
            return "empty"
        if any(r in text.casefold()[:80] for r in REFUSALS):
            return "refusal"
        if latin_ratio(prompt) > 0.8 and latin_ratio(text) < 0.6:
            return "other language"
        words = content_words(prompt)
        if words and len(missing_words(prompt, text)) == len(words) and len(words) >= 2:
            return "off-topic"
        return None

    def _build(
        self, req: EnhanceRequest, profile: Profile, draft: Draft, adult: bool, adult_mode: bool, context_text: str
    ) -> Enhancement:
        composer = c.compose_tags if profile.style == "tags" else c.compose_paragraph
        # No laundering: with any age or minor signal, nothing adds "adult" or adult wording.
        said = "\n".join((req.prompt, context_text, req.system_prompt or ""))  # everything the caller sent
        adult_wording = adult_mode and not self.policy.age_signal(said)
        parts = composer(profile, req.prompt, draft.text, adult_wording, self.policy, said)
        done = c.compress(parts, profile.style, lambda t: count_for(profile.tokenizer, t).used, profile.token_limit)
        final = done.text
        # Output is checked too: a result that would cross the line is refused, never returned.
        judged = [req.prompt, context_text, req.system_prompt or "", final]
        self.policy.enforce(judged, action="enhance", stage="output")
        tokens = count_for(profile.tokenizer, final)
        warnings = [w for w in (draft.warning,) if w]
        store = self.store.health()
        if store.shared and store.warning:  # shared cache degraded: the job still succeeds
            warnings.append(store.warning)
        if not done.fits:
            warnings.append(f"the caller's own words need {tokens.used} tokens, over the {profile.token_limit} budget")
        return Enhancement(
            original_prompt=req.prompt,
            enhanced_prompt=final,
            job_type=req.job_type,
            quality=req.quality,
            enhancement_type=req.enhancement_type,
            source=draft.source,
            family=profile.family,
            quality_score=quality_score(profile, req.prompt, final, tokens.used, adult_mode),
            tokens=TokenBudget(_TOKENIZER_LABEL[profile.tokenizer], profile.token_limit, tokens.used, tokens.chunks),
            fits_budget=done.fits,
            negative_prompt=profile.negative_prompt,
            adult_content=adult,
            adult_mode=adult_mode,
            indicators=tuple(name for name, present in groups_present(profile, final).items() if present),
            caching=self.settings.enhance_cache_size > 0,
            warnings=tuple(warnings),
        )

    async def info(self) -> EnhanceStatus:
        stats = await self.store.cache_stats()
        health = self.store.health()
        return EnhanceStatus(
            job_types=tuple(_facts(p) for p in self.profiles.by_name.values()),
            cache_size=stats.size,
            cache_hits=stats.hits,
            cache_misses=stats.misses,
            cache_shared=health.shared and health.ok,
            model_loaded=self.engine.loaded,
            adult_enabled=self.policy.adult_enabled,
        )


def _facts(p: Profile) -> JobTypeFacts:
    return JobTypeFacts(
        p.name, p.family, _TOKENIZER_LABEL[p.tokenizer], p.token_limit, p.token_target, p.style, p.version
    )


_TOKENIZER_LABEL = {"clip": "clip-vit-l-14-bpe", "clip-bpe-proxy": "clip-bpe (proxy for umt5)"}
