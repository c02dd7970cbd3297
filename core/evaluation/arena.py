"""Arena evaluation (CodeArena, arXiv 2412.05210, section 3): questions, answer and judge prompts, verdicts.

A candidate model's answer to each coding question is compared with a baseline model's answer by a
judge, in both orders. A chat-model judge writes reasons and ends with a verdict on a five-point
scale about answer A against answer B; the verdict is then read from the candidate's side (much
better, better, tie, worse, much worse), or `undecided` when no verdict can be read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import DataError, OptionError
from core.evaluation.bench import CRITERIA, JudgeItem
from core.jsonl import read_jsonl_objects
from core.llm.base import Message, SamplingParams
from core.synthesis.steps import Answered, Exchange, Failed, Step, Turn

ANSWER_PROMPT_VERSION = "arena-answer-v1"
JUDGE_PROMPT_VERSION = "arena-judge-v1"
VERDICT_PARSER_VERSION = "arena-verdict-v1"
ORDERS: tuple[str, ...] = ("given", "swapped")  # given: the candidate is answer A; swapped: answer B
# A pairwise model of ours judges the answers on the human-preference objective's criteria.
ARENA_CRITERIA = CRITERIA["human-preference"]

# The judge's five-point scale about answer A against answer B, and the same scale read from the
# candidate's side; UNDECIDED when no verdict can be read (refusals, echoes of the scale, nothing).
POSITION_VERDICTS: tuple[str, ...] = ("A>>B", "A>B", "A=B", "A<B", "A<<B")
VERDICTS: tuple[str, ...] = ("much better", "better", "tie", "worse", "much worse")
UNDECIDED = "undecided"
_POSITION_TO_VERDICT = dict(zip(POSITION_VERDICTS, VERDICTS))
_MIRROR = {"A>>B": "A<<B", "A>B": "A<B", "A=B": "A=B", "A<B": "A>B", "A<<B": "A>>B"}
ANSWER_FIELDS = ("answer", "response", "text")
BASELINE_FIELDS = ("baseline_answer", "baseline")


@dataclass(frozen=True, slots=True)
class ArenaQuestion:
    """One arena question as read from a file: its id in the file, text, category and language."""

    external_id: str
    question: str
    category: str
    language: str
    baseline_answer: str | None = None


@dataclass(frozen=True, slots=True)
class ArenaSetFile:
    """The questions of one JSONL file and the hash that identifies their content."""

    questions: tuple[ArenaQuestion, ...]
    content_hash: str


@dataclass(frozen=True, slots=True)
class ImportedAnswer:
    """A model's answer to one question, read from a file."""

    external_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ArenaSubject:
    """What the answer method needs of a question."""

    question_id: int
    question: str
    language: str


@dataclass(frozen=True, slots=True)
class ArenaPairing:
    """One question in one order: the two answers as the judge sees them, and the candidate's side."""

    question_id: int
    order: str
    question: str
    category: str
    language: str
    answer_a: str
    answer_b: str
    candidate_side: str  # "A" in the given order, "B" in the swapped one
    candidate_answer_id: int = 0
    baseline_answer_id: int = 0

    def judge_item(self) -> JudgeItem:
        """The pairing laid out for a pairwise judge of ours (`gt` names the candidate's side)."""
        return JudgeItem(
            objective="arena", task_id=str(self.question_id), order=self.order, instruction=self.question,
            code_a=self.answer_a, code_b=self.answer_b, criteria=ARENA_CRITERIA,
            gt="A" if self.candidate_side == "A" else "B",
            # Arena answers are prose with code: no python fences, and a length tie stays undecided.
            protocol="workbench",
        )


def pairing(
    question_id: int, order: str, question: str, category: str, language: str,
    candidate: tuple[int, str], baseline: tuple[int, str],
) -> ArenaPairing:
    """Lay out a question in one order: the candidate is answer A in `given`, answer B in `swapped`."""
    if order not in ORDERS:
        raise OptionError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    given = order == "given"
    first, second = (candidate, baseline) if given else (baseline, candidate)
    return ArenaPairing(
        question_id=question_id, order=order, question=question, category=category, language=language,
        answer_a=first[1], answer_b=second[1], candidate_side="A" if given else "B",
        candidate_answer_id=candidate[0], baseline_answer_id=baseline[0],
    )


# ---- reading files ---------------------------------------------------------------------------------

def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return list(read_jsonl_objects(path))


def _text_field(record: dict[str, Any], names: Sequence[str], where: str, *, required: bool) -> str | None:
    for name in names:
        if name in record and record[name] is not None:
            value = record[name]
            if not isinstance(value, str):
                raise DataError(f"{where}: field {name!r} must be text")
            if required and not value.strip():
                raise DataError(f"{where}: field {name!r} is empty")
            return value
    if required:
        raise DataError(f"{where}: missing field {names[0]!r}")
    return None


def _external_id(record: dict[str, Any], where: str) -> str:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DataError(f"{where}: missing field 'id' (a non-empty string or integer)")
    return str(value)


def read_arena_questions(path: Path) -> ArenaSetFile:
    """Read a JSONL arena set: `id`, `question`, `category`, `language`, optional `baseline_answer`.

    Raises DataError naming the file and line of the first bad record (missing or non-text
    field, duplicate id, bad JSON, not UTF-8), or when the file holds no record.
    """
    questions: list[ArenaQuestion] = []
    seen: dict[str, int] = {}
    for number, record in _records(path):
        where = f"{path}:{number}"
        external_id = _external_id(record, where)
        if external_id in seen:
            raise DataError(f"{where}: duplicate id {external_id!r} (first on line {seen[external_id]})")
        seen[external_id] = number
        question = _text_field(record, ("question",), where, required=True)
        category = _text_field(record, ("category",), where, required=True)
        language = _text_field(record, ("language",), where, required=True)
        baseline = _text_field(record, BASELINE_FIELDS, where, required=False)
        assert question is not None and category is not None and language is not None
        questions.append(ArenaQuestion(external_id, question, category.strip(), language.strip().lower(),
                                       baseline if baseline and baseline.strip() else None))
    digest = hashlib.sha256()
    for q in questions:
        for part in (q.external_id, q.question, q.category, q.language, q.baseline_answer or ""):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return ArenaSetFile(tuple(questions), digest.hexdigest()[:32])


def read_arena_answers(path: Path) -> list[ImportedAnswer]:
    """Read a JSONL file of answers: `id` (the question's) and `answer` (or `response`, `text`)."""
    answers: list[ImportedAnswer] = []
    seen: dict[str, int] = {}
    for number, record in _records(path):
        where = f"{path}:{number}"
        external_id = _external_id(record, where)
        if external_id in seen:
            raise DataError(f"{where}: duplicate id {external_id!r} (first on line {seen[external_id]})")
        seen[external_id] = number
        text = _text_field(record, ANSWER_FIELDS, where, required=True)
        assert text is not None
        answers.append(ImportedAnswer(external_id, text))
    return answers


# ---- prompts ---------------------------------------------------------------------------------------

_JUDGE_TEMPLATE = """\
Please act as an impartial judge of two answers to a user's coding question. Compare them on \
correctness, helpfulness, code quality and clarity for the question asked{language_note}; do not let \
the order of the answers or their length sway you.

[QUESTION]
{question}

[ANSWER_A]
{answer_a}

[ANSWER_B]
{answer_b}

Write brief reasons, then end with one line "Verdict: LABEL", where LABEL is one of:
[[A>>B]] answer A is much better than answer B
[[A>B]] answer A is better than answer B
[[A=B]] tie: neither answer is better
[[A<B]] answer A is worse than answer B
[[A<<B]] answer A is much worse than answer B"""


def judge_prompt(item: ArenaPairing) -> str:
    """The user turn asking a chat model to judge answer A against answer B on the five-point scale."""
    note = f" (in {item.language})" if item.language else ""
    return _JUDGE_TEMPLATE.format(
        language_note=note, question=item.question.strip(), answer_a=item.answer_a.strip("\n"),
        answer_b=item.answer_b.strip("\n"),
    )


def answer_messages(subject: ArenaSubject) -> tuple[Message, ...]:
    """The chat a candidate model answers: the question as the user asked it."""
    return ({"role": "user", "content": subject.question},)


# ---- verdicts --------------------------------------------------------------------------------------

_OP = r"(?P<op>>>|<<|≫|≪|>|<|==?)"
_LABEL = re.compile(r"\[\[\s*(?P<left>[AB])\s*" + _OP + r"\s*(?P<right>[AB])\s*\]\]", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w\[])(?P<left>[AB])\s*" + _OP + r"\s*(?P<right>[AB])(?![\w\]])")
_SIDE = (
    r"(?:(?:answer|assistant|response|solution|candidate|model)\s*(?P<side>[ab])\b|\[answer_(?P<tag>[ab])\]"
    r"|verdict\s*[:=-]+\s*\**\s*(?P<vside>[ab])\b)"
)
_STRENGTH = (
    r"(?P<strength>much|significantly|far|considerably|substantially|vastly|clearly|slightly|somewhat|"
    r"marginally|a\s+(?:little|bit))?"
)
_WORDED = re.compile(
    _SIDE + r"(?:'s\s+\w+)?\s+(?:is|was|seems|appears|looks|remains)(?:\s+(?:to\s+be|overall|definitely))*\s+"
    + _STRENGTH + r"\s*(?P<dir>better|superior|stronger|preferable|worse|inferior|weaker)\b",
    re.IGNORECASE,
)
_TIE = re.compile(
    r"\b(?:verdict\s*[:=-]+\s*\**\s*tie|it'?s\s+a\s+tie|(?:the\s+)?(?:result\s+is\s+a\s+)?tie\b[.!]?\s*$|"
    r"(?:both|the\s+two)\s+answers\s+are\s+(?:about\s+|roughly\s+)?(?:equally\s+good|equal|equivalent|"
    r"(?:relatively\s+)?the\s+same)|neither\s+(?:answer\s+)?is\s+(?:clearly\s+)?better|relatively\s+the\s+same)",
    re.IGNORECASE | re.MULTILINE,
)
_REFUSAL = re.compile(
    r"\b(?:cannot|can'?t|unable\s+to)\s+(?:judge|decide|determine|compare)\b|\bi'?m\s+sorry\b|\bas\s+an\s+ai\b",
    re.IGNORECASE,
)
_VERDICT_CUE = re.compile(r"verdict[^\[\]\n]{0,30}$", re.IGNORECASE)
_OR_GAP = re.compile(r"^[\s,;/*`'\"]*(?:or|/)[\s,;/*`'\"]*$", re.IGNORECASE)
_MUCH = {"much", "significantly", "far", "considerably", "substantially", "vastly", "clearly"}
# Labels closer together than this (in characters, whitespace and punctuation aside) form one block:
# a block naming three or more verdicts is the scale echoed back, not a decision.
_BLOCK_GAP = 40


@dataclass(frozen=True, slots=True)
class _Claim:
    start: int
    end: int
    verdict: str  # one of POSITION_VERDICTS, or UNDECIDED


def _normalise(left: str, op: str, right: str) -> str | None:
    left, right = left.upper(), right.upper()
    if left == right:
        return None
    op = {"≫": ">>", "≪": "<<", "==": "="}.get(op, op)
    verdict = f"A{op}B"
    return verdict if left == "A" else _MIRROR[verdict]


def _label_claims(text: str, pattern: re.Pattern[str]) -> list[_Claim]:
    claims = []
    for match in pattern.finditer(text):
        verdict = _normalise(match.group("left"), match.group("op"), match.group("right"))
        if verdict is not None:
            claims.append(_Claim(match.start(), match.end(), verdict))
    return claims


def _last_block(claims: list[_Claim], text: str) -> list[_Claim]:
    block = [claims[-1]]
    for claim in reversed(claims[:-1]):
        gap = re.sub(r"[\s\W]+", "", text[claim.end : block[0].start])
        if len(gap) > _BLOCK_GAP:
            break
        block.insert(0, claim)
    return block


def _hedged(claim: _Claim, claims: list[_Claim], text: str) -> bool:
    """True when the next label follows with only "or" between them ("[[A>B]] or [[A=B]]")."""
    later = [other for other in claims if other.start >= claim.end]
    return bool(later) and later[0].verdict != claim.verdict and bool(_OR_GAP.match(text[claim.end : later[0].start]))


def _decide_from_labels(claims: list[_Claim], text: str) -> str:
    cued = [c for c in claims if _VERDICT_CUE.search(text[max(0, c.start - 40) : c.start])]
    if cued:
        return UNDECIDED if _hedged(cued[-1], claims, text) else cued[-1].verdict
    block = _last_block(claims, text)
    if len({claim.verdict for claim in block}) > 2 or any(_hedged(claim, block, text) for claim in block):
        return UNDECIDED
    return block[-1].verdict


def _worded_claims(text: str) -> list[_Claim]:
    claims = []
    for match in _WORDED.finditer(text):
        side = (match.group("side") or match.group("tag") or match.group("vside") or "").upper()
        strength = re.sub(r"\s+", " ", (match.group("strength") or "").lower())
        better = match.group("dir").lower() in ("better", "superior", "stronger", "preferable")
        op = (">>" if better else "<<") if strength in _MUCH else (">" if better else "<")
        verdict = _normalise(side, op, "B" if side == "A" else "A")
        if verdict is not None:
            claims.append(_Claim(match.start(), match.end(), verdict))
    claims += [_Claim(m.start(), m.end(), "A=B") for m in _TIE.finditer(text)]
    claims += [_Claim(m.start(), m.end(), UNDECIDED) for m in _REFUSAL.finditer(text)]
    return sorted(claims, key=lambda claim: claim.start)


def parse_position_verdict(text: str) -> str:
    """Read a judge's verdict about answer A against answer B: one of POSITION_VERDICTS or UNDECIDED.

    Bracketed labels (`[[A>B]]`, also `[[B>A]]`, `[[A≫B]]`) win over everything else, then bare
    labels (`A>>B`), then worded claims ("Answer B is slightly better", "tie"). Among labels, the
    last one after the word "verdict" decides, else the last one in the text. The scale echoed
    back (three or more verdicts listed together), hedges ("[[A>B]] or [[A=B]]") and refusals
    give UNDECIDED.
    """
    stripped = (text or "").strip()
    if not stripped:
        return UNDECIDED
    for pattern in (_LABEL, _BARE):
        claims = _label_claims(stripped, pattern)
        if claims:
            return _decide_from_labels(claims, stripped)
    worded = _worded_claims(stripped)
    return worded[-1].verdict if worded else UNDECIDED


def candidate_verdict(position_verdict: str, candidate_side: str) -> str:
    """A position verdict read from the candidate's side: "much better" ... "much worse", or undecided."""
    if position_verdict not in _POSITION_TO_VERDICT:
        return UNDECIDED
    verdict = position_verdict if candidate_side == "A" else _MIRROR[position_verdict]
    return _POSITION_TO_VERDICT[verdict]


def decision_verdict(decision: str, candidate_side: str) -> tuple[str, str]:
    """A pairwise judge's "A" / "B" / "?" as (position verdict, candidate verdict); no strength."""
    if decision not in ("A", "B"):
        return UNDECIDED, UNDECIDED
    position = "A>B" if decision == "A" else "A<B"
    return position, candidate_verdict(position, candidate_side)


# ---- state machines for the synthesis driver -------------------------------------------------------

@dataclass(frozen=True)
class ArenaAnswerMethod:
    """One turn per question: the candidate model answers it; the answer is the item's outcome."""

    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=2048, temperature=0.0))

    @property
    def name(self) -> str:
        """The method's name."""
        return "arena-answer"

    @property
    def prompt_version(self) -> str:
        """The version of the answer prompt, part of every cache key."""
        return ANSWER_PROMPT_VERSION

    def next_step(self, subject: ArenaSubject, exchanges: tuple[Exchange, ...]) -> Step:
        """Ask the question, then keep the answer (an empty answer fails the item)."""
        if not exchanges:
            return Turn("answer", "candidate", answer_messages(subject), self.params)
        answer = exchanges[-1]
        if not answer.answer.strip():
            return Failed("the model's answer is empty", retryable=True)
        return Answered(answer.answer, answer.finish_reason)


@dataclass(frozen=True)
class ArenaJudgeMethod:
    """One turn per question and order: the judge compares the two answers; its verdict is the outcome."""

    params: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=1024, temperature=0.0))

    @property
    def name(self) -> str:
        """The method's name."""
        return "arena-judge"

    @property
    def prompt_version(self) -> str:
        """The version of the judge prompt, part of every cache key."""
        return JUDGE_PROMPT_VERSION

    def next_step(self, subject: ArenaPairing, exchanges: tuple[Exchange, ...]) -> Step:
        """Send the judge prompt, then read the verdict (an unreadable one is stored as undecided)."""
        if not exchanges:
            messages: tuple[Message, ...] = ({"role": "user", "content": judge_prompt(subject)},)
            return Turn("judge", "judge", messages, self.params)
        raw = exchanges[-1]
        position = parse_position_verdict(raw.answer)
        return Answered(raw.answer, raw.finish_reason,
                        {"position_verdict": position,
                         "verdict": candidate_verdict(position, subject.candidate_side)})
