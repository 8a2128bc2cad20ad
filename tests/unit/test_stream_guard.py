"""StreamGuard's release rule, rule by rule, with the real content policy as the judge."""

from __future__ import annotations

import itertools

import pytest

from shared.chat.stream_guard import CLAUSE_WORDS, HOLDBACK_WORDS, StreamGuard
from shared.errors import PolicyViolation
from shared.policy import ContentPolicy
from tests.fakes.engine import tokens_of

POLICY = ContentPolicy(adult_enabled=False)


def guard_for(
    context: str, chars: int = POLICY.holdback_chars, words: int = HOLDBACK_WORDS, clause: int = CLAUSE_WORDS
) -> StreamGuard:
    return StreamGuard(
        lambda pieces: POLICY.enforce([context, *pieces], action="chat", stage="stream"), chars, words, clause
    )


def stream_until_refused(guard: StreamGuard, reply: str, token_chars: int = 2) -> str:
    """Feed `reply` token by token; return what was released before the refusal."""
    sent = ""
    with pytest.raises(PolicyViolation):
        for token in tokens_of(reply, token_chars):
            sent += guard.feed(token)
    return sent


def test_a_word_being_spelt_out_is_kept_back() -> None:
    """With the character, word and clause windows at their minimum, one-letter tokens still stay back."""
    guard = guard_for("my kid", chars=0, words=1, clause=0)
    reply = "the ducks were out and then everyone got n a k e d by the pond"
    sent = stream_until_refused(guard, reply)
    assert sent == "the ducks were out and then everyone got "


def test_a_phrase_padded_with_whitespace_is_kept_back_whole() -> None:
    """'high school girl' padded wider than holdback_chars: the word window still holds 'high'."""
    pad = " " * (POLICY.holdback_chars + 10)
    lead = "here is the sketch you asked for. It shows a quiet painting of a sunny garden in the late afternoon. "
    reply = lead + "high" + pad + "school" + pad + "girl on a sofa"  # 'high' starts a clause: only the words hold it
    sent = stream_until_refused(guard_for("a naked portrait"), reply)
    assert sent == "here is the sketch you asked for. "


def test_release_ends_at_whitespace_and_stays_the_window_behind() -> None:
    reply = " ".join(f"Number {i} is here." for i in range(12))
    guard = guard_for("hello")
    sent = ""
    for token in tokens_of(reply, 3):
        delta = guard.feed(token)
        sent += delta
        if delta:  # each release ends at whitespace, the window's length before the end
            unsent = guard.text[len(sent) :]
            assert delta.endswith(". ") and len(unsent) >= POLICY.holdback_chars  # at a clause start
            assert len(unsent.split()) >= HOLDBACK_WORDS
    assert sent  # the window moved: text did leave
    assert sent + guard.finish(reply) == reply


def test_leading_whitespace_is_not_sent_so_deltas_join_to_the_final_text() -> None:
    raw = "  \n" + " ".join(f"word{i}." for i in range(30)) + "\n"
    guard = guard_for("hello")
    sent = "".join(guard.feed(token) for token in tokens_of(raw, 4))
    assert sent and not sent[0].isspace()
    assert sent + guard.finish(raw.strip()) == raw.strip()


def test_the_judge_runs_once_per_completed_word_not_per_token() -> None:
    reply = " ".join(["extraordinarily"] * 20)
    guard = guard_for("hello")
    for token in tokens_of(reply, 2):
        guard.feed(token)
    assert guard.checks == 19  # the last word is whole only when the stream ends (finish's final check)


def test_a_long_reply_is_judged_in_overlapping_pieces_of_bounded_size() -> None:
    """A check's cost stays flat as the reply grows, and a term across a piece boundary is still found."""
    judged: list[list[str]] = []

    def judge(pieces: list[str]) -> None:
        judged.append(pieces)
        POLICY.enforce(["a naked portrait", *pieces], action="chat", stage="stream")

    guard = StreamGuard(judge, POLICY.holdback_chars)
    reply = " ".join(f"calm{i} sunny{i} afternoon{i}." for i in range(60)) + " with a little girl on the sofa"
    sent = stream_until_refused(guard, reply)
    assert "little" not in sent
    pieces = judged[-1]
    assert len(pieces) > 5 and max(len(p[-1]) for p in judged) <= 4 * POLICY.holdback_chars
    spans = [(reply.index(p), reply.index(p) + len(p)) for p in pieces]  # the numbered words make each unique
    assert spans[0][0] == 0 and "little girl" in pieces[-1]
    for (_, end), (start, _) in itertools.pairwise(spans):  # each overlaps the next by the window
        assert end - start >= POLICY.holdback_chars


def test_text_without_whitespace_is_released_only_at_the_end() -> None:
    reply = "从前有一条龙住在山里，它每天早上都会飞到河边喝水，然后回到山洞里睡觉。" * 3
    guard = guard_for("hello")
    assert "".join(guard.feed(token) for token in tokens_of(reply, 2)) == ""
    assert guard.finish(reply) == reply


# Many short sentences (several judged pieces), then one clause the contact rule refuses as a whole, its
# minor and its verb far apart: longer than the hold-back window and than the overlap between pieces.
LONG_LEAD = " ".join(f"Sentence {i} tells of the quiet lake and the boats." for i in range(8)) + " "
LONG_CLAUSE = (
    "A 12 year old girl, who had spent the whole long summer afternoon at the lake with her cousins, "
    "laughing, swimming and reading old comic books under the willow trees, ended up kissing an older man"
)


def test_a_long_refused_clause_across_a_piece_boundary_leaves_nothing() -> None:
    """The contact rule reads a whole clause (commas do not end it): no word of one leaves before it is judged."""
    assert len(LONG_CLAUSE) > 2 * POLICY.holdback_chars and len(LONG_CLAUSE.split()) > 3 * HOLDBACK_WORDS
    reply = LONG_LEAD + LONG_CLAUSE + ". The evening was calm."
    judged: list[list[str]] = []

    def judge(pieces: list[str]) -> None:
        judged.append(pieces)
        POLICY.enforce(["tell me a story", *pieces], action="chat", stage="stream")

    # Without the clause rule (the old 6-word window) part of the clause leaves: the case is a real one.
    old = StreamGuard(judge, POLICY.holdback_chars, 6, clause_words=0)
    leaked = "".join(old.feed(token) for token in tokens_of(reply, 2))
    assert leaked.startswith(LONG_LEAD + "A 12 year old girl,")
    judged.clear()
    sent = stream_until_refused(StreamGuard(judge, POLICY.holdback_chars), reply)
    assert sent == LONG_LEAD  # nothing of the clause, not even its first word
    assert len(judged[-1]) > 1  # the reply was judged in pieces; the clause lies whole in the last one


def test_a_clause_longer_than_any_rule_reads_is_released_that_many_words_back() -> None:
    reply = " ".join(f"word{i}" for i in range(3 * CLAUSE_WORDS))  # one clause, no sentence end
    guard = guard_for("hello")
    sent = ""
    for token in tokens_of(reply, 3):
        delta = guard.feed(token)
        sent += delta
        if delta:  # no rule reads further back within a clause than CLAUSE_WORDS words
            assert delta.endswith(" ") and len(guard.text[len(sent) :].split()) >= CLAUSE_WORDS
    assert sent and sent + guard.finish(reply) == reply
