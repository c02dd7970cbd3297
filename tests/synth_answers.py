"""Realistic, messy LLM answers replayed by the loopback server for synthesis tests."""

from __future__ import annotations

import hashlib
import re

EXPLANATION = (
    "Sure! Here's what's going on.\n\nThe commit replaces a manual loop with a clearer construct and "
    "guards against an edge case the old code missed. The author likely wanted the function to be "
    "safer on empty input and easier to read."
)

VERDICTS_YES = ["Yes. The change fixes a real edge case.", "[YES]\nIt makes the function correct on empty input.",
                "**YES** - the new code is faster.", "Verdict: yes\nReason: it removes a quadratic loop."]
VERDICT_NO = "**NO**\nThe change only bumps a version string; there is nothing to teach."

PAIR_BRACKETS = """[INSTRUCTION]
Write a function `total(xs)` that returns the sum of a list of numbers, returning 0 for an empty list.

[CRITERION]
Correctness and readability: use the built-in instead of manual accumulation.

[NAIVE CODE]
```python
def total(xs):
    # add everything up
    result = 0
    for i in range(len(xs)):
        result = result + xs[i]
    return result
```

[IMPROVED CODE]
```python
def total(xs):
    # the built-in handles empty lists
    return sum(xs)
```

[FEEDBACK]
The improved code uses `sum`, which is shorter, faster and obviously correct.
"""

PAIR_MARKDOWN = """Here is the training example you asked for.

## Criterion
Efficiency: membership tests should not be linear.

## Instruction
Write a function `dedupe(items)` that returns the items without duplicates, keeping their order.

### Improved code
```python
def dedupe(items):
    seen = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
```

### Naive code
```
def dedupe(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
```

**Feedback:** Checking membership in a set is O(1), so the improved version is linear.

Let me know if you need anything else!"""

PAIR_SAME = PAIR_BRACKETS.replace("return sum(xs)", "result = 0\n    for i in range(len(xs)):\n        result = result + xs[i]\n    return result").replace("# the built-in handles empty lists", "# add everything up")

PAIR_NOT_PARSING = PAIR_BRACKETS.replace("return sum(xs)", "return sum(xs")

PAIR_MISSING = "I think the instruction would be about sums, and the criterion is correctness. Sorry, I can't write code."

DRAFT = "Here is my solution:\n\n```python\ndef count_words(text):\n    counts = {}\n    for word in text.split():\n        if word in counts:\n            counts[word] += 1\n        else:\n            counts[word] = 1\n    return counts\n```\n\nThis counts each word."

CRITIQUE_IMPROVE = """**Reflection:** The attempt is correct but reimplements a counter by hand.

**Decision:** IMPROVE

**Criterion:** Idiomatic style: use collections.Counter for counting.

**Improved code:**
```python
from collections import Counter


def count_words(text):
    return dict(Counter(text.split()))
```

**Feedback:** Counter states the intent directly and avoids the manual branch of the initial attempt."""

# The reference's own tags: the critic heads its better code [ATTEMPT_2] and names the attempts.
CRITIQUE_ATTEMPT_TAGS = """[REFLECTION]
[ATTEMPT_1] is correct but reimplements a counter by hand.

[CRITERIA]
The desired code should be correct, efficient, and Pythonic.

[ATTEMPT_2]
```python
from collections import Counter


def count_words(text):
    return dict(Counter(text.split()))
```

[FEEDBACK]
[ATTEMPT_2] uses Counter; [ATTEMPT_1] branches on every word."""

CRITIQUE_BOLD_ATTEMPT = CRITIQUE_ATTEMPT_TAGS.replace("[ATTEMPT_2]\n", "**Attempt 2**\n").replace(
    "[REFLECTION]", "**Reflection:**").replace("[CRITERIA]", "**Criteria:**").replace("[FEEDBACK]", "**Feedback:**")

CRITIQUE_REFLECTION_ONLY = "[REFLECTION]\n[ATTEMPT_1] is correct, linear and idiomatic; nothing to improve."

PAIR_NUMBERED = """1. **Instruction:** Write a function `total(xs)` that returns the sum of a list of numbers.
2. **Criteria:** Readability: use the built-in.

**Naive code:**
```python
def total(xs):
    result = 0
    for x in xs:
        result = result + x
    return result
```

### Improved code
```python
def total(xs):
    return sum(xs)
```

**Feedback:**
[IMPROVED_CODE] is shorter; [NAIVE_CODE] accumulates by hand."""

CRITIQUE_STOP = "[REFLECTION]\nThe attempt is correct and idiomatic.\n[DECISION]\nSTOP"


def _pick(text: str, options: list[str]) -> str:
    return options[int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(options)]


def synth_responder(messages: list[dict[str, str]]) -> str:
    """Answer the workbench's synthesis prompts the way real models do: mostly right, sometimes messy."""
    last = messages[-1]["content"]
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    if "Explain briefly what this change does" in last:
        return EXPLANATION
    if "Answer [YES] or [NO]" in last:
        if "bump" in first_user.lower():
            return VERDICT_NO
        if "mumble" in first_user.lower():
            return "Hmm, it is hard to say without more context."
        return _pick(first_user, VERDICTS_YES)
    if "Turn the improvement into a self-contained training example" in last:
        lowered = first_user.lower()
        if "same-code" in lowered:
            return PAIR_SAME
        if "broken-code" in lowered:
            return PAIR_NOT_PARSING
        if "refuse" in lowered:
            return PAIR_MISSING
        tag = re.search(r"#(\d+)", first_user)
        answer = _pick(first_user, [PAIR_BRACKETS, PAIR_MARKDOWN])
        # Each commit gets its own task text, so every item makes a distinct pair.
        return answer.replace("keeping their order.", f"keeping their order (case {tag.group(1) if tag else 0}).").replace(
            "for an empty list.", f"for an empty list (case {tag.group(1) if tag else 0}).")
    if system.startswith("You are a programmer."):
        return DRAFT
    if system.startswith("You review a programmer's attempt"):
        return CRITIQUE_STOP if "reverse" in last.lower() else CRITIQUE_IMPROVE
    return "I am not sure what you want."
