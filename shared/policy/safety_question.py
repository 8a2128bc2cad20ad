"""Questions about protecting children are answered in chat.

A parent asking what to do about a teen who is sexting, a teacher's safeguarding question, a
summary of a law on abuse material, research on misuse of image generators, a parent's or
clinician's question about a child's body: each names a minor and a sexual or nude word, and
each must be answered. A text is such a question when it has

- a protective subject (`child_safety_topics.txt`: report, signs of, law, research, is it
  normal, pediatrician, ...),
- the form of a question (a question mark, or it opens with a question or an ask for
  information: how, what, is, summarise, explain, ...),
- and nothing that asks for the content itself (`child_safety_requests.txt`: write, story,
  describe in detail, role-play, you are, show me, send me, where can I find, secretly, how to
  get a ..., an example).

The policy then does not count that text's own sexual words (its minor still counts with the
rest of the conversation), in chat only: every enhance prompt becomes an image. The reply to
such a question may name abuse, nudity and a child's body to answer it; it is refused beside a
minor when it reads as sexual narrative (`reply_explicit.txt`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.policy import normalize
from shared.policy.lexicon import Lexicon, Scan, read_list

# Words that open a question or an ask for information (the first word of the text).
OPENERS = frozenset(
    "how what when where which who whom whose why is are am was were do does did can could should would will "
    "may might must shall has have had any summarise summarize explain outline list tell compare "
    "describe define clarify advise".split()
)


@dataclass(frozen=True)
class SafetyQuestions:
    topics: Lexicon
    requests: Lexicon
    explicit: Lexicon  # a reply's sexual narrative words

    @classmethod
    def of(cls, extra_dir: Path | None = None) -> SafetyQuestions:
        return cls(
            Lexicon.of(read_list("child_safety_topics.txt", extra_dir)),
            Lexicon.of(read_list("child_safety_requests.txt", extra_dir)),
            Lexicon.of(read_list("reply_explicit.txt", extra_dir)),
        )

    def asks(self, text: str, scan: Scan) -> bool:
        """A child-safety question: a protective subject, a question's form, no request for content."""
        if not self.topics.find(scan) or self.requests.find(scan):
            return False
        first = normalize.words(scan.base)[:1]
        return "?" in scan.base or (bool(first) and first[0] in OPENERS)

    def narrates(self, scan: Scan) -> bool:
        """A reply that reads as sexual narrative (refused beside a minor, even answering a question)."""
        return bool(self.explicit.find(scan))
