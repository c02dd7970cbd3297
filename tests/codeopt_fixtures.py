"""Small problems with tests and a policy stand-in whose answers pass, fail, run slowly or hold no code."""

from __future__ import annotations

import re
import threading
from collections import Counter

from core.execution.problems import Problem

# Variant i answers the i-th request for a problem (ten requests cover every variant once).
PASSING_VARIANTS = (0, 1, 2, 3, 4, 8)


def demo_problem(k: int, *, note: str = "") -> Problem:
    """add_k(x) returns x + k."""
    return Problem(
        task_id=f"Demo/{k}",
        prompt=f'def add_{k}(x: int) -> int:\n    """Return x plus {k}.{note}"""\n',
        entry_point=f"add_{k}",
        test=f"def check(candidate):\n    assert candidate(2) == {2 + k}\n    assert candidate(5) == {5 + k}\n",
        canonical_solution=f"    return x + {k}\n",
        source="jsonl",
    )


def demo_problems(count: int, *, start: int = 0) -> list[Problem]:
    """Problems add_start ... add_(start+count-1)."""
    return [demo_problem(k) for k in range(start, start + count)]


def variant(k: int, index: int) -> str:
    """The answer of variant `index` (0-9) for add_k."""
    name = f"add_{k}"
    fenced = {
        0: f"def {name}(x):\n    return x + {k}\n",
        1: f"def {name}(x):\n    return x + {k}\n",
        2: f"def {name}(x):\n    return x + {k}\n",
        3: f"def {name}(x):\n    total = x\n    for _ in range(30000):\n        total += 0\n    return total + {k}\n",
        4: f"def {name}(x):\n    return {k} + x\n",
        5: f"def {name}(x):\n    return x + {k + 1}\n",
        6: f"def {name}(x):\n    raise ValueError('no')\n",
        8: f"def {name}(x):\n    y = x\n    return y + {k}\n",
        9: f"def {name}(x):\n    return x * {k + 7}\n",
    }
    if index == 7:
        return "I am not able to solve this."
    return f"Here is the solution:\n```python\n{fenced[index]}```\n"


class PolicyStandIn:
    """A responder for the loopback server: the n-th request for add_k gets variant n % 10."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]]) -> str:
        match = re.search(r"def add_(\d+)\(", messages[-1]["content"])
        assert match is not None, messages
        k = int(match.group(1))
        with self._lock:
            index = self.seen[k] % 10
            self.seen[k] += 1
        return variant(k, index)
