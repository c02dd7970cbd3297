"""Commit-Instruct: explain a commit, judge whether it improves the code, then write a pair from it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from core.llm.base import Message, SamplingParams
from core.synthesis.parsing import extract_code, parse_verdict, split_sections
from core.synthesis.steps import Exchange, Failed, Filtered, Step, Turn, finish_pair, truncated_note

PROMPT_VERSION = "commit-instruct-v2"
MAX_CODE_CHARS = 12_000

SYSTEM = (
    "You are a senior software engineer who reviews code changes and turns good ones into "
    "short, self-contained coding lessons."
)

EXPLAIN = """\
Here is one file changed by a commit.

[COMMIT MESSAGE]
{message}

[FILE]
{path} ({language})

[OLD CODE]
```{language}
{old_code}
```

[DIFF]
```diff
{diff}
```

Explain briefly what this change does and why the author made it."""

VERDICT = """\
Does this change clearly improve the code - its correctness, efficiency, security, readability \
or maintainability - in a way a reviewer could teach as a general lesson? Changes that only \
update versions, data, formatting, names or features do not count.
Answer [YES] or [NO] on the first line, then give the reason in one sentence."""

# The sections and their rules are the reference's (amazon-science/llm-code-preference,
# codefavor/prompt/commit_instruct.py, _round3_data_construct): its tags, and FEEDBACK naming the
# codes by those tags only.
WRITE_PAIR = """\
Turn the improvement into a self-contained training example. Inspired by the commit and the \
explanation, write these sections, each starting with its tag on its own line:

[INSTRUCTION]
A natural-language description of the goal and requirements of the code: a self-contained coding task.

[CRITERIA]
A brief and focused criterion that the code should ideally meet, not necessarily implied in [INSTRUCTION].

[NAIVE_CODE]
```{language}
A short, self-contained solution that may NOT completely meet [CRITERIA], as the old code did.
```

[IMPROVED_CODE]
```{language}
Improved code that better meets [CRITERIA] than [NAIVE_CODE], while still respecting [INSTRUCTION].
```

[FEEDBACK]
Briefly describe why [IMPROVED_CODE] is better than [NAIVE_CODE]. \
Refer to the codes using "[IMPROVED_CODE]" and "[NAIVE_CODE]" only."""

# The reference samples every Commit-Instruct turn at temperature 0.8 (commit_instruct.py, main).
TEMPERATURE = 0.8
EXPLAIN_PARAMS = SamplingParams(max_tokens=512, temperature=TEMPERATURE)
VERDICT_PARAMS = SamplingParams(max_tokens=128, temperature=TEMPERATURE)
PAIR_PARAMS = SamplingParams(max_tokens=1536, temperature=TEMPERATURE)


@dataclass(frozen=True, slots=True)
class CommitSubject:
    """One mined commit file as the critic sees it."""

    commit_id: int
    message: str
    path: str
    language: str
    old_text: str
    new_text: str


def _clip(text: str) -> str:
    if len(text) <= MAX_CODE_CHARS:
        return text
    return text[:MAX_CODE_CHARS] + "\n... [clipped]"


def commit_diff(subject: CommitSubject) -> str:
    """The unified diff of the commit file."""
    lines = difflib.unified_diff(
        subject.old_text.splitlines(), subject.new_text.splitlines(),
        fromfile=f"a/{subject.path}", tofile=f"b/{subject.path}", lineterm="", n=3,
    )
    return "\n".join(lines)


def explain_message(subject: CommitSubject) -> str:
    """The first user turn: the commit message, old code and diff."""
    return EXPLAIN.format(
        message=subject.message.strip() or "(no message)", path=subject.path, language=subject.language,
        old_code=_clip(subject.old_text), diff=_clip(commit_diff(subject)),
    )


@dataclass(frozen=True, slots=True)
class CommitInstruct:
    """The Commit-Instruct state machine; `strip_comments` clips comments from the pair's code."""

    strip_comments: bool = True
    name: str = "commit-instruct"
    prompt_version: str = PROMPT_VERSION

    def next_step(self, subject: CommitSubject, exchanges: tuple[Exchange, ...]) -> Step:
        """Explain, then verdict, then the pair; a verdict NO ends as filtered with its reason."""
        messages: list[Message] = [{"role": "system", "content": SYSTEM},
                                   {"role": "user", "content": explain_message(subject)}]
        if not exchanges:
            return Turn("explain", "critic", tuple(messages), EXPLAIN_PARAMS)
        explained = exchanges[0]
        if not explained.answer.strip():
            return Failed("the explanation is empty" + truncated_note(explained))
        messages += [{"role": "assistant", "content": explained.answer},
                     {"role": "user", "content": VERDICT}]
        if len(exchanges) == 1:
            return Turn("verdict", "critic", tuple(messages), VERDICT_PARAMS)
        judged = exchanges[1]
        verdict = parse_verdict(judged.answer)
        if verdict is None:
            return Failed("no YES/NO verdict in the answer" + truncated_note(judged))
        if not verdict:
            return Filtered("verdict NO: " + _reason(judged.answer))
        messages += [{"role": "assistant", "content": judged.answer},
                     {"role": "user", "content": WRITE_PAIR.format(language=subject.language)}]
        if len(exchanges) == 2:
            return Turn("write-pair", "critic", tuple(messages), PAIR_PARAMS)
        return self._pair(subject, exchanges[2])

    def _pair(self, subject: CommitSubject, written: Exchange) -> Step:
        sections = split_sections(
            written.answer, ("INSTRUCTION", "CRITERION", "NAIVE CODE", "IMPROVED CODE", "FEEDBACK")
        )
        for needed in ("INSTRUCTION", "CRITERION", "NAIVE CODE", "IMPROVED CODE"):
            if not sections.get(needed, "").strip():
                return Failed(f"no {needed} section in the answer" + truncated_note(written))
        naive, improved = extract_code(sections["NAIVE CODE"]), extract_code(sections["IMPROVED CODE"])
        if not naive.strip() or not improved.strip():
            side = "NAIVE" if not naive.strip() else "IMPROVED"
            return Failed(f"the {side} CODE section holds no code" + truncated_note(written))
        if not sections.get("FEEDBACK", "").strip():
            return Failed("no FEEDBACK section" + truncated_note(written))
        return finish_pair(
            instruction=sections["INSTRUCTION"], criteria=sections["CRITERION"], chosen=improved,
            rejected=naive, feedback=sections.get("FEEDBACK", ""), language=subject.language,
            strip=self.strip_comments, meta={"commit_id": subject.commit_id, "path": subject.path},
        )


def _reason(answer: str) -> str:
    text = " ".join(answer.split())
    for token in ("[NO]", "**NO**", "NO.", "No.", "NO", "No"):
        if text.startswith(token):
            text = text[len(token):]
            break
    return text.strip(" :-.")[:300] or "no reason given"
