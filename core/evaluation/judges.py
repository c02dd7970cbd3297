"""Judges of CodePrefBench items: spec parsing, baselines, the generative judge and its parser."""

from __future__ import annotations

import asyncio
import difflib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import LLMError, OptionError
from core.evaluation.bench import JudgeItem
from core.evaluation.protocols import get_protocol

UNDECIDED = "?"
DECISIONS = ("A", "B", UNDECIDED)
PARSER_VERSION = "verdict-v1"
BASELINES = ("always-a", "always-b", "shorter", "longer", "random")


@dataclass(frozen=True, slots=True)
class JudgeOutput:
    """A judge's answer to one item: "A", "B" or "?" (undecided), with what it said and cost."""

    decision: str
    raw: str
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """A parsed `--judge` value: kind (pair-rm, baseline, generative) and its argument."""

    kind: str
    argument: str
    text: str


class Judge(Protocol):
    """Anything that decides items in batches; `lineage` says which model it is."""

    spec: JudgeSpec
    lineage: dict[str, Any]

    def decide(self, items: Sequence[JudgeItem]) -> list[JudgeOutput]:
        """Answer each item, in order."""
        ...

    def close(self) -> None:
        """Release models, connections or event loops."""
        ...


JUDGE_KINDS = ("pair-rm", "baseline")
CHAT_KINDS = ("openai", "hf", "vllm")


def parse_judge_spec(text: str) -> JudgeSpec:
    """`pair-rm:PATH`, `baseline:NAME[:SEED]`, or a chat model spec (`openai:`, `hf:`, `vllm:`) for a
    generative judge; raise OptionError (a usage error) for anything else."""
    value = text.strip()
    if not value:
        raise OptionError("empty judge spec; use pair-rm:PATH, baseline:always-a or a model spec")
    prefix, _, rest = value.partition(":")
    if prefix not in JUDGE_KINDS + CHAT_KINDS:
        close = difflib.get_close_matches(prefix, JUDGE_KINDS + CHAT_KINDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}:?)" if close else ""
        raise OptionError(f"unknown judge kind {prefix!r}{hint}: use pair-rm:PATH, baseline:NAME, "
                          "or a model spec openai:MODEL[@URL], hf:PATH or vllm:SERVER_ID")
    if prefix == "pair-rm":
        if not rest:
            raise OptionError("pair-rm needs a model path: pair-rm:PATH")
        return JudgeSpec("pair-rm", rest, value)
    if prefix == "baseline":
        name, _, seed = rest.partition(":")
        if name not in BASELINES:
            raise OptionError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
        if seed and (name != "random" or not seed.isdigit()):
            raise OptionError(f"bad baseline {rest!r}: only random takes a seed (random:SEED)")
        return JudgeSpec("baseline", rest, value)
    return JudgeSpec("generative", value, value)


def check_judge_spec(text: str) -> JudgeSpec:
    """Parse a judge spec and check what it names before anything loads: a pair-rm model is a local
    folder (or .gguf file), a chat model spec passes `core.llm.specs.check_spec`. Raises OptionError."""
    spec = parse_judge_spec(text)
    if spec.kind == "pair-rm":
        from core.localmodels import require_local_model

        require_local_model(spec.argument, what=f"judge {spec.text!r}", files=(".gguf",))
    elif spec.kind == "generative":
        from core.llm.specs import check_spec

        check_spec(spec.argument)
    return spec


class BaselineJudge:
    """Decides without a model: always A, always B, the shorter or longer code, or a seeded coin.

    Equally long codes get the item's protocol's tie decision (codefavor: B, as the reference's
    `length_bias_eval`; workbench: undecided).
    """

    def __init__(self, spec: JudgeSpec) -> None:
        self.spec = spec
        name, _, seed = spec.argument.partition(":")
        self.name = name
        self.seed = int(seed) if seed else 0
        self.lineage: dict[str, Any] = {"baseline": spec.argument}

    def decide(self, items: Sequence[JudgeItem]) -> list[JudgeOutput]:
        """Answer each item from its codes alone."""
        return [JudgeOutput(self._decide_one(item), raw=self.spec.argument) for item in items]

    def _decide_one(self, item: JudgeItem) -> str:
        if self.name == "always-a":
            return "A"
        if self.name == "always-b":
            return "B"
        if self.name == "random":
            # Seeded by the item, not by call order, so a resumed run draws the same coins.
            coin = random.Random(f"{self.seed}:{item.objective}:{item.task_id}:{item.order}")
            return coin.choice("AB")
        len_a, len_b = len(item.code_a), len(item.code_b)
        if len_a == len_b:
            return get_protocol(item.protocol).length_tie
        shorter = "A" if len_a < len_b else "B"
        if self.name == "shorter":
            return shorter
        return "B" if shorter == "A" else "A"

    def close(self) -> None:
        """Nothing to release."""


BackendFactory = Callable[[str], Any]


def resolve_backend(spec: str) -> Any:
    """Build a ChatBackend for a generative spec through the LLM layer's `make_backend`."""
    try:
        from core.llm import make_backend  # type: ignore[attr-defined]
    except ImportError:
        raise OptionError(
            f"judge {spec!r} needs a chat backend, but this install's LLM layer has no make_backend; "
            "use pair-rm:PATH or baseline:NAME"
        ) from None
    return make_backend(spec)


class GenerativeJudge:
    """Asks a chat model for feedback ending in a verdict sentence and parses the decision."""

    def __init__(self, spec: JudgeSpec, backend: Any, *, max_tokens: int = 1024) -> None:
        from core.llm.base import SamplingParams

        self.spec = spec
        self.backend = backend
        self.params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        self.lineage: dict[str, Any] = {"model": getattr(backend, "model_name", spec.argument)}
        # One loop for the judge's life, in its own thread: async clients are bound to the loop
        # that opened them, and callers may already run a loop of their own (the TUI, tests).
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="generative-judge", daemon=True)
        self._thread.start()

    def decide(self, items: Sequence[JudgeItem]) -> list[JudgeOutput]:
        """Send one chat per item (the backend runs them concurrently) and parse each verdict."""
        from core.llm.base import ChatRequest

        requests = [
            ChatRequest(
                messages=(
                    {
                        "role": "user",
                        "content": get_protocol(item.protocol).generation_prompt(
                            item.instruction, item.code_a, item.code_b, item.criteria
                        ),
                    },
                ),
                params=self.params,
            )
            for item in items
        ]
        started = time.perf_counter()
        try:
            results = asyncio.run_coroutine_threadsafe(self.backend.chat_many(requests), self._loop).result()
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001  a backend failure ends the run with one line
            raise LLMError(f"judge {self.spec.text}: {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - started
        outputs = []
        for result in results:
            decision = UNDECIDED if result.finish_reason == "error" else parse_decision(result.text)
            outputs.append(
                JudgeOutput(
                    decision=decision,
                    raw=result.text,
                    latency_s=float(result.latency_s or elapsed / max(len(items), 1)),
                    prompt_tokens=int(result.prompt_tokens),
                    completion_tokens=int(result.completion_tokens),
                )
            )
        return outputs

    def close(self) -> None:
        """Close the backend and the judge's event loop."""
        try:
            asyncio.run_coroutine_threadsafe(self.backend.aclose(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


def make_judge(
    spec_text: str,
    *,
    device: str | None = None,
    batch_size: int | None = None,
    backend_factory: BackendFactory | None = None,
) -> Judge:
    """Build the judge a spec names; pair-rm loads its model here (torch is imported lazily)."""
    spec = parse_judge_spec(spec_text)
    if spec.kind == "baseline":
        return BaselineJudge(spec)
    if spec.kind == "pair-rm":
        try:
            from core.evaluation.pair_rm import PairRMJudge
        except ImportError as exc:
            raise OptionError(f"pair-rm judges need the ml extra (torch, transformers): {exc}") from None
        return PairRMJudge.load(spec, device=device, batch_size=batch_size)
    backend = (backend_factory or resolve_backend)(spec.argument)
    return GenerativeJudge(spec, backend)


def redecide(kind: str, raw: str, stored: str) -> str:
    """The decision a stored raw output gives under the current parser, without calling a model."""
    if kind == "generative":
        return parse_decision(raw)
    if kind == "pair-rm":
        return pair_rm_decision(raw, stored)
    return stored


def pair_rm_decision(raw: str, fallback: str = UNDECIDED) -> str:
    """Decide from a pair-rm raw output `{"A": logit, "B": logit}`: the higher logit wins."""
    try:
        logits = json.loads(raw)
        logit_a, logit_b = float(logits["A"]), float(logits["B"])
    except (ValueError, KeyError, TypeError):
        return fallback
    if logit_a == logit_b:
        return UNDECIDED
    return "A" if logit_a > logit_b else "B"


# --- verdict parser -------------------------------------------------------------------------

_CODE = (
    r"(?:\[\s*code[\s_-]*(?P<{g}1>[ab])\s*\]"  # [CODE_A]
    r"|\*{0,2}code[\s_-]*(?P<{g}2>[ab])\b\*{0,2}"  # CODE_A, Code A, code-b
    r"|(?:response|solution|snippet|option|answer|implementation|candidate)\s*\(?(?P<{g}3>[ab])\b\)?"
    r"|(?:the\s+)?(?P<{g}4>first|second)(?:\s+(?:code|response|solution|snippet|one|implementation))?)"
)
_BETTER = r"(?:better|superior|preferable|preferred|the\s+better|stronger|more\s+(?:correct|efficient|secure|readable))"
_WORSE = r"(?:worse|inferior|weaker|less\s+(?:correct|efficient|secure))"
_IS = r"(?:\s+(?:is|was|seems|appears|looks|remains)(?:\s+(?:to\s+be|clearly|slightly|much|far|overall|definitely|generally))*\s+)"

_VERDICT = re.compile(
    _CODE.replace("{g}", "w") + _IS + r"(?P<neg>not\s+|n't\s+)?" + r"(?:(?P<better>" + _BETTER + r")|(?P<worse>" + _WORSE + r"))",
    re.IGNORECASE,
)
_CANONICAL = re.compile(r"\[CODE_([AB])\]\s+is\s+better\s+than\s+\[CODE_([AB])\]", re.IGNORECASE)
_PICK = re.compile(
    r"(?:i\s+(?:would\s+)?(?:prefer|choose|pick|recommend|select)|(?:final\s+)?(?:verdict|answer|decision|choice|winner|preferred|better\s+(?:code|response|one)|conclusion)\s*(?:is|:|=|-)+)"
    r"\s*\**\s*" + _CODE.replace("{g}", "p") + r"?(?:\s*\**\s*(?P<bare>[ab])\b)?",
    re.IGNORECASE,
)
_NO_WINNER = re.compile(
    r"\b(?:neither|both\s+(?:codes?|responses?|solutions?|are|have)|(?:it'?s\s+a\s+)?tie\b|equally\s+(?:good|bad|correct|efficient|secure)|"
    r"no\s+clear\s+(?:winner|difference)|cannot\s+(?:determine|decide|judge)|can'?t\s+(?:determine|decide|judge|help)|"
    r"unable\s+to\s+(?:determine|decide|judge)|i'?m\s+sorry|as\s+an\s+ai)\b",
    re.IGNORECASE,
)
_LONE_LETTER = re.compile(r"^\W*(?:code[\s_-]*)?([ab])\W*$", re.IGNORECASE)
_ECHO_GAP = re.compile(r"^[\s\"'.,]*or[\s\"']*$", re.IGNORECASE)


def _side(match: re.Match[str], group: str) -> str | None:
    for index in (1, 2, 3):
        letter = match.group(f"{group}{index}")
        if letter:
            return letter.upper()
    ordinal = match.group(f"{group}4")
    if ordinal:
        return "A" if ordinal.lower() == "first" else "B"
    return None


def _other(side: str) -> str:
    return "B" if side == "A" else "A"


@dataclass(slots=True)
class _Claim:
    position: int
    decision: str
    strong: bool = field(default=False)


def parse_decision(text: str) -> str:
    """The verdict of a feedback text: "A", "B", or "?" for ties, refusals and anything unclear.

    The template sentence "[CODE_X] is better than [CODE_Y]" wins when present; otherwise the
    last claim in the text ("Code A is better", "I prefer the second", "Neither ...") decides.
    """
    stripped = (text or "").strip()
    if not stripped:
        return UNDECIDED
    lone = _LONE_LETTER.match(stripped)
    if lone:
        return lone.group(1).upper()
    canonical = [m for m in _CANONICAL.finditer(stripped) if m.group(1).upper() != m.group(2).upper()]
    if canonical:
        last = canonical[-1]
        if len(canonical) >= 2:
            gap = stripped[canonical[-2].end() : last.start()]
            # The judge echoed both template sentences ("... or ...") instead of choosing one.
            if _ECHO_GAP.match(gap.split("criteria", 1)[-1]) and canonical[-2].group(1) != last.group(1):
                return UNDECIDED
        return last.group(1).upper()
    claims: list[_Claim] = []
    for match in _VERDICT.finditer(stripped):
        side = _side(match, "w")
        if side is None:
            continue
        says_worse = bool(match.group("worse")) != bool(match.group("neg"))
        claims.append(_Claim(match.start(), _other(side) if says_worse else side))
    for match in _PICK.finditer(stripped):
        side = _side(match, "p") or (match.group("bare") or "").upper() or None
        if side:
            claims.append(_Claim(match.start(), side, strong=True))
    for match in _NO_WINNER.finditer(stripped):
        claims.append(_Claim(match.start(), UNDECIDED))
    if not claims:
        return UNDECIDED
    claims.sort(key=lambda claim: claim.position)
    return claims[-1].decision
