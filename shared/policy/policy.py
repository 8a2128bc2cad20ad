"""The content policy: adult-request detection and the always-on block on sexual content
involving minors. No setting turns the block off.

Layers, each cheap: normalisation (normalize.py, every reading of a text), word lists in
many languages with exemptions for idioms (lexicon.py, reader.py, data/), ages and school
stages (ages.py), and, where configured, one yes/no question to the model (judge.py).
A minor signal anywhere in what the model sees (system prompt, every history turn)
combined with a sexual signal anywhere in it refuses the job.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from shared.errors import PolicyViolation
from shared.policy import normalize
from shared.policy.ages import AgeRules, age_patterns
from shared.policy.contact import ContactRule
from shared.policy.judge import JudgeInput, JudgeStats, ModelJudge
from shared.policy.lexicon import DATA_DIR, Lexicon, Scan, fold, read_json, read_list
from shared.policy.reader import Reader
from shared.policy.safety_question import SafetyQuestions

log = logging.getLogger("policy")

REFUSAL = "This request can't be processed: it conflicts with the content policy."
_OBJECT_WORDS = 8  # how far after 'sleep with' its object is read for a stated age
# 'sleep with my 2 year old' is co-sleeping: only an object that is not the speaker's family counts.
_FAMILY_OBJECT = frozenset({"my", "our", "your", "his", "her", "their"})
_SPEAKER = frozenset({"me", "us"})  # 'sleep with me': counts under role-play framing with a minor
# Two letters spaced or dotted ('c p pics', 'c.p pics') read joined, for csam_terms.txt only.
_LETTER_PAIR = re.compile(r"(?<![^\W_])([^\W\d_])[\s.*_-]{1,3}([^\W\d_])(?![^\W_])")


# Actions whose every text becomes an image, a video or a story prompt: never a question.
DEPICTING_ACTIONS = frozenset({"enhance"})


@dataclass(frozen=True)
class Assessment:
    minor: bool  # a person under 18 is named or implied
    protected: bool  # a protected real person is named
    sexual: bool
    adult_trigger: bool
    adult_indicators: tuple[str, ...]
    adult_detected: bool
    safety_question: bool = False  # a child-safety question in chat (safety_question.py): its reply is an answer

    @property
    def blocked(self) -> bool:
        return (self.minor or self.protected) and self.sexual


@dataclass(frozen=True)
class _Findings:
    """What one text says, cached: history turns come back with every request."""

    minor: bool
    protected: bool
    sexual: bool
    sexual_unexempt: bool  # sexual once the idioms are read as written: counts where a minor is
    contact_voided: bool  # contact with an age-gap partner, excused only by safety wording
    beside_voided: bool  # a beside-a-minor phrase, excused only by safety wording
    triggers: bool
    indicators: frozenset[str]
    question: bool = False  # a child-safety question (safety_question.py)
    narrates: bool = False  # sexual narrative words: what counts in the answer to such a question
    pictured: bool = False  # sexual in an image beside a minor ('private parts'), not in a question


class ContentPolicy:
    def __init__(self, adult_enabled: bool, extra_dir: Path | None = None, judge: ModelJudge | None = None) -> None:
        self.adult_enabled = adult_enabled
        self.judge = judge
        thresholds = read_json("thresholds.json", extra_dir)
        self.indicator_threshold = int(thresholds["adult_indicator_threshold"])
        self.adult_age = int(thresholds["adult_age"])
        self.minor_terms = Lexicon.of(read_list("minor_terms.txt", extra_dir))
        self.sexual_terms = Lexicon.of(read_list("sexual_terms.txt", extra_dir))
        self.protected = Lexicon.of(read_list("protected_people.txt", extra_dir))
        self.triggers = Lexicon.of(read_list("adult_triggers.txt", extra_dir))
        self.indicators = Lexicon.of(read_list("adult_indicators.txt", extra_dir))
        self.age_lowering = Lexicon.of(read_list("age_lowering_terms.txt", extra_dir))
        self.adult_subjects = Lexicon.of(read_list("adult_subjects.txt", extra_dir))
        self.adult_words = Lexicon.of(read_list("adult_words.txt", extra_dir))
        intimate = [" ".join(normalize.words(normalize.base(t))) for t in read_list("intimate_with.txt", extra_dir)]
        self._intimate = re.compile(rf"\b(?:{'|'.join(map(re.escape, intimate))})\b") if intimate else None
        self.digest = _lists_digest(extra_dir)  # part of cache keys: a list change invalidates
        exempt_nouns = Lexicon.of(read_list("age_exempt_nouns.txt", extra_dir)).singles
        ages = read_json("ages.json", extra_dir)
        self.ages = AgeRules.of(ages, self.adult_age, exempt_nouns)
        self._any_age, self._adult_age_re = age_patterns(ages, self.adult_age)
        # Both signals at once ('cp pics'); sexual only where a minor is named ('get intimate');
        # contact with an age-gap partner ('kissing an older man'); role-play framing.
        self.csam = Lexicon.of(read_list("csam_terms.txt", extra_dir))
        self.beside_minor = Lexicon.of(read_list("sexual_beside_minor.txt", extra_dir))
        # A parent's report or a prevention question ('no adult should touch her under her
        # clothes') voids those two rules unless the text asks for a depiction ('write', 'story').
        self.safety_cues = Lexicon.of(read_list("safety_cues.txt", extra_dir))
        self.depiction_cues = Lexicon.of(read_list("depiction_cues.txt", extra_dir))
        self.roleplay = Lexicon.of(read_list("roleplay_cues.txt", extra_dir))
        self.questions = SafetyQuestions.of(extra_dir)
        self.image_beside_minor = Lexicon.of(read_list("image_beside_minor.txt", extra_dir))
        self.costumes = Lexicon.of(costumes := read_list("costume_exemptions.txt", extra_dir))
        spellings = dict(line.split(None, 1) for line in read_list("spellings.txt", extra_dir) if " " in line)
        core = self.minor_terms.singles | self.sexual_terms.singles | self.protected.singles
        fillers = frozenset(read_list("compound_fillers.txt", extra_dir))
        activity = read_list("exemptions.activity.txt", extra_dir)
        education = read_list("exemptions.education.txt", extra_dir)
        self.education_cues = Lexicon.of(read_list("education_cues.txt", extra_dir))
        exemptions = read_list("exemptions.txt", extra_dir)
        staff = read_list("school_staff.txt", extra_dir)
        roles = [f"{school} {job}" for school in read_list("school_words.txt", extra_dir) for job in staff]
        self.staff = Lexicon.of(staff)
        self.reader = Reader(exemptions, core, fillers, activity, education, spellings, costumes, roles)
        self.contact = ContactRule(
            Lexicon.of(read_list("contact_verbs.txt", extra_dir)),
            Lexicon.of(read_list("age_gap_partners.txt", extra_dir)),
            self.adult_words,
            self._adult_age_re,
            frozenset(" ".join(fold(t)) for t in read_list("family_objects.txt", extra_dir)),
            lambda text: self.ages.minor(text) or bool(self.minor_terms.find(self.reader.scan(text))),
        )
        refusing = (self.minor_terms, self.sexual_terms, self.protected, self.csam, self.beside_minor)
        longest = max(lex.longest for lex in refusing)
        # Stream hold-back: a refused term spelled out with a separator after every letter
        # ('c h i l d') plus an age phrase's tail; see docs/CONTENT_POLICY.md.
        self.holdback_chars = max(2 * longest, len("seventeen years of age")) + 8
        self._findings = lru_cache(maxsize=4096)(self._read)
        # Enhancement checks each model phrase against the caller's whole input: scan that once.
        self._scan = lru_cache(maxsize=4096)(self.reader.scan)

    def _read(self, text: str) -> _Findings:
        readings = normalize.readings(text)
        scan = self.reader.scan(text, readings)
        safety = bool(self.safety_cues.find(scan)) and not self.depiction_cues.find(scan)
        # Contact with an age-gap partner carries both signals, read within one clause.
        contact = self._contact(scan, readings)
        csam = self._csam(text, scan) or (not safety and contact)
        sexual = csam or bool(self.sexual_terms.find(scan)) or self._intimate_with(readings, False)
        beside = bool(self.beside_minor.find(scan))
        unexempt = sexual or (beside and not safety) or self._roleplay_intimate(scan, readings)
        unexempt = unexempt or (scan.exempted and self._sexual_as_written(text, readings, scan))
        aged = any(self.ages.minor(self.reader.respelled(r)) for r in readings)
        return _Findings(
            minor=csam or self._minor_terms(text, readings, scan) or aged,
            protected=bool(self.protected.find(scan)),
            sexual=sexual,
            sexual_unexempt=unexempt,
            contact_voided=safety and contact,
            beside_voided=safety and beside,
            triggers=bool(self.triggers.find(scan)),
            indicators=frozenset(self.indicators.find(scan)),
            question=self.questions.asks(text, scan),
            narrates=self.questions.narrates(scan),
            pictured=bool(self.image_beside_minor.find(scan)),
        )

    def _csam(self, text: str, scan: Scan) -> bool:
        if self.csam.find(scan):
            return True
        joined = _LETTER_PAIR.sub(r"\1\2", scan.base)
        return joined != scan.base and bool(self.csam.find(self.reader.scan(joined)))

    def _contact(self, scan: Scan, readings: list[str]) -> bool:
        return bool(self.contact.verbs.find(scan)) and self.contact.found(readings, self.reader.spelled)

    def _sexual_as_written(self, text: str, readings: list[str], scan: Scan) -> bool:
        """Sexual once the activity senses are read as written (and sex education too, where
        a cue such as 'demo' or 'with a' makes it an act): what counts beside a minor."""
        education = not self.education_cues.find(scan)
        return bool(self.sexual_terms.find(self.reader.scan(text, readings, False, education)))

    def _minor_terms(self, text: str, readings: list[str], scan: Scan) -> bool:
        """A listed minor term; a costume ('schoolgirl costume') not, where an adult wears it."""
        if not self.minor_terms.find(scan):
            return False
        roles = bool(self.staff.find(scan))  # 'homeroom teacher' is an adult's job
        costume = bool(self.costumes.find(scan)) and bool(
            self._adult_age_re.search(scan.base) or self.adult_words.find(scan)
        )
        if not (roles or costume):
            return True
        return bool(self.minor_terms.find(self.reader.scan(text, readings, costume=costume, roles=roles)))

    def _roleplay_intimate(self, scan: Scan, readings: list[str]) -> bool:
        """'sleep with me' under role-play framing: sexual where a minor is named. (Phrases that
        are sexual only beside a minor, `beside_minor`, count unless safety wording voids them:
        'no adult should touch her under her clothes'.)"""
        return bool(self.roleplay.find(scan)) and self._intimate_with(readings, True)

    def _intimate_with(self, readings: list[str], speaker: bool) -> bool:
        """'sleep with a 15 year old': a verb that is sexual when its object has a minor's age
        (or, with `speaker`, when its object is the speaker: 'sleep with me')."""
        if self._intimate is None:
            return False
        for reading in readings:
            spaced = " ".join(normalize.words(reading))
            for match in self._intimate.finditer(spaced):
                after = spaced[match.end() :].split()[:_OBJECT_WORDS]
                if not after or after[0] in _FAMILY_OBJECT:
                    continue
                if (after[0] in _SPEAKER) if speaker else self.ages.minor(" ".join(after)):
                    return True
        return False

    def assess(
        self,
        texts: Sequence[str],
        trigger_text: str | None = None,
        indicator_texts: Sequence[str] | None = None,
        depiction: bool = False,
        answer_from: int | None = None,
    ) -> Assessment:
        """Judge the texts together: a minor in one and a sexual term in another still block.

        Adult-mode triggers are read only from `trigger_text` (the caller's current message;
        default the first text) and indicators only from `indicator_texts` (default all).
        `depiction`: the texts become an image or a story whatever their wording (enhance), so
        safety wording ('what should I do') excuses nothing, and a child-safety question is a prompt.
        `answer_from`: texts from this index on are the reply to a child-safety question.
        """
        read = [(self._findings(t), answer_from is not None and i >= answer_from) for i, t in enumerate(texts) if t]
        question = not depiction and any(f.question and not answer for f, answer in read)
        found = [_counted(f, answer, depiction) for f, answer in read]
        minor = any(f.minor or (depiction and f.contact_voided) for f in found)
        trigger_from = texts[0] if trigger_text is None and texts else trigger_text
        trigger = bool(trigger_from) and self._findings(trigger_from).triggers
        sources = texts if indicator_texts is None else indicator_texts
        indicators = sorted(set().union(*(self._findings(t).indicators for t in sources if t)))
        return Assessment(
            minor=minor,
            protected=any(f.protected for f in found),
            # Idioms ('naked eye', 'sex ed', 'explicit about') never excuse a text that names a minor.
            sexual=any(f.sexual or (minor and f.sexual_unexempt) or (depiction and _pictured(f, minor)) for f in found),
            adult_trigger=trigger,
            adult_indicators=tuple(indicators),
            adult_detected=trigger or len(indicators) >= self.indicator_threshold,
            safety_question=question,
        )

    def enforce(
        self,
        texts: Sequence[str],
        action: str,
        stage: str = "input",
        trigger_text: str | None = None,
        indicator_texts: Sequence[str] | None = None,
        answer_from: int | None = None,
    ) -> Assessment:
        """The rule layers: assess and refuse when the line is crossed; logs the event, never the text."""
        found = self.assess(texts, trigger_text, indicator_texts, action in DEPICTING_ACTIONS, answer_from)
        if found.blocked:
            self._refuse(action, stage, f"minor={found.minor} protected={found.protected}")
        return found

    async def confirm(self, request: JudgeInput, found: Assessment, action: str, adult_mode: bool = False) -> None:
        """The judge layer, after the rules passed: asked only when something is sexual or adult (or a
        child-safety question was let through). When it cannot answer, a request with a minor or youth
        signal is refused (fail closed, counted in health); any other keeps the rules' decision."""
        judge = self.judge
        asked = found.sexual or found.adult_indicators or found.adult_detected or adult_mode or found.safety_question
        if judge is None or not asked:
            return
        score = await judge.score(request)
        if score is None:
            if self._youth(request, found):
                judge.counts.refused_unavailable += 1
                self._refuse(action, "judge_unavailable", "minor or youth signal, judge had no answer")
            log.warning(
                "policy judge unavailable: action=%s, no minor or youth signal, the rules' decision stands", action
            )
        elif score >= judge.threshold:
            self._refuse(action, "judge", f"score={score:.2f}")

    def _youth(self, request: JudgeInput, found: Assessment) -> bool:
        """A minor signal, or an age-lowering word ('young', 'petite'), anywhere in the request."""
        texts = [request.message, request.system, *request.turns]
        return found.minor or any(
            t and (self._findings(t).minor or self.age_lowering.find(self._scan(t))) for t in texts
        )

    def judge_stats(self) -> JudgeStats:
        return self.judge.stats() if self.judge is not None else JudgeStats()

    @staticmethod
    def _refuse(action: str, stage: str, detail: str) -> None:
        log.warning("content policy refusal: action=%s stage=%s %s", action, stage, detail)
        raise PolicyViolation(REFUSAL)

    # ---- enhancement helpers -----------------------------------------------
    def age_signal(self, text: str) -> bool:
        """Any minor signal, any stated age, or any age-lowering word: never add 'adult' then."""
        scan = self._scan(text)
        found = self._findings(text)
        return found.minor or bool(self.age_lowering.find(scan)) or bool(self._any_age.search(scan.base))

    def added_age_lowering(self, original: str, produced: str) -> set[str]:
        """Age-lowering words in `produced` that the caller did not write."""
        return self.age_lowering.find(self._scan(produced)) - self.age_lowering.find(self._scan(original))

    def launders(self, original: str, produced: str) -> bool:
        """True when `produced` adds adult wording or an adult age to an `original` (the caller's
        prompt, context and system prompt) that has an age, youth or minor signal."""
        if not self.age_signal(original):
            return False
        added = self.adult_words.find(self._scan(produced))
        if added - self.adult_words.find(self._scan(original)):
            return True
        ages = {normalize.base(m.group(0)) for m in self._adult_age_re.finditer(normalize.base(produced))}
        return bool(ages - {normalize.base(m.group(0)) for m in self._adult_age_re.finditer(normalize.base(original))})

    def adult_subjects_in(self, text: str) -> set[str]:
        return self.adult_subjects.find(self._scan(text))


def _counted(f: _Findings, answer: bool, depiction: bool) -> _Findings:
    """What a text adds to the decision: a child-safety question in chat adds no sexual signal (its
    minor still counts), and the answer to one only its sexual narrative words."""
    if answer:
        return replace(f, sexual=f.narrates, sexual_unexempt=f.narrates, contact_voided=False, beside_voided=False)
    if f.question and not depiction:
        return replace(f, sexual=False, sexual_unexempt=False, contact_voided=False, beside_voided=False)
    return f


def _pictured(f: _Findings, minor: bool) -> bool:
    """Sexual only in an image: what safety wording excused (contact, a minor included; a beside-a-minor
    phrase) and image_beside_minor.txt words beside a minor."""
    return f.contact_voided or (minor and (f.beside_voided or f.pictured))


def _lists_digest(extra_dir: Path | None) -> str:
    """A digest of every shipped and operator list file: the policy's version."""
    digest = hashlib.sha256()
    for folder in (DATA_DIR, extra_dir):
        if folder is not None and folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in (".txt", ".json"):
                    digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
