"""Training-set export: classification, generation, DPO and chat records in the pairwise layout,
a deterministic train/validation split, optional parquet and `datasets` copies, and a manifest.

Layout under the output folder: `manifest.json`, and per format `FORMAT/train.jsonl` and
`FORMAT/validation.jsonl` (plus `FORMAT/train.parquet`, `FORMAT/validation.parquet` and a
`datasets` DatasetDict in `FORMAT/hf/` when asked).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.curation.stripping import strip_comments
from core.errors import OptionError
from core.evaluation.prompts import PROMPT_VERSION, classification_prompt, generation_prompt, place, verdict_sentence

FORMATS = ("classification", "generation", "dpo", "chat")
DEFAULT_FORMATS = ("classification", "generation", "dpo")
SPLITS = ("train", "validation")
EXPORT_VERSION = "export-v1"
_CHOSEN = re.compile(r"\[(?:chosen|chosen_code|code_chosen)\]|\b(?:the\s+)?chosen\s+code\b", re.IGNORECASE)
_REJECTED = re.compile(r"\[(?:rejected|rejected_code|code_rejected)\]|\b(?:the\s+)?rejected\s+code\b", re.IGNORECASE)
_TRAILING_VERDICT = re.compile(r"\s*\[CODE_[AB]\] is better than \[CODE_[AB]\] on the mentioned criteria\.?\s*$")


@dataclass(frozen=True, slots=True)
class ExportPair:
    """What export needs from a stored pair."""

    pair_id: int
    source: str
    instruction: str
    criteria: str
    chosen: str
    rejected: str
    feedback: str = ""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How to export: formats, orders, comment stripping, split, extra containers, tokenizer."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    both_orders: bool = True
    strip: bool = True
    seed: int = 0
    validation_fraction: float = 0.05
    parquet: bool = False
    hf: bool = False
    tokenizer: str | None = None

    def check(self) -> None:
        """Raise OptionError for unknown formats or a split fraction outside [0, 1)."""
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise OptionError(f"unknown export format(s) {', '.join(unknown) or '(none)'}; use {', '.join(FORMATS)}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise OptionError(f"validation fraction must be in [0, 1), got {self.validation_fraction}")


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """Lineage and counts of one export, written as manifest.json and stored."""

    data: dict[str, Any] = field(default_factory=dict)

    @property
    def pair_ids_hash(self) -> str:
        """Hash of the exported pair ids."""
        return str(self.data["pair_ids_hash"])


def rewrite_feedback(feedback: str, chosen_label: str, rejected_label: str) -> str:
    """Name the codes as [CODE_A]/[CODE_B]: `[CHOSEN]`, `the chosen code` and their rejected twins."""
    text = _CHOSEN.sub(f"[CODE_{chosen_label}]", feedback)
    text = _REJECTED.sub(f"[CODE_{rejected_label}]", text)
    return _TRAILING_VERDICT.sub("", text).strip()


def split_of(pair_id: int, seed: int, validation_fraction: float) -> str:
    """The split of a pair: a hash of seed and id, so both orders of a pair land together."""
    digest = hashlib.sha256(f"{seed}:{pair_id}".encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "big") / 2**64 < validation_fraction else "train"


def pair_records(pair: ExportPair, fmt: str, options: ExportOptions) -> list[dict[str, Any]]:
    """The records one pair contributes to one format (one per order, or one for DPO)."""
    chosen = strip_comments(pair.chosen) if options.strip else pair.chosen
    rejected = strip_comments(pair.rejected) if options.strip else pair.rejected
    if fmt == "dpo":
        return [{"prompt": pair.instruction, "chosen": chosen, "rejected": rejected, "pair_id": pair.pair_id}]
    records = []
    for chosen_first in (True, False) if options.both_orders else (True,):
        code_a, code_b, label = place(chosen, rejected, chosen_first)
        order = "chosen_first" if chosen_first else "rejected_first"
        if fmt == "classification":
            prompt = classification_prompt(pair.instruction, code_a, code_b, pair.criteria)
            completion: str = label
        else:
            prompt = generation_prompt(pair.instruction, code_a, code_b, pair.criteria)
            feedback = rewrite_feedback(pair.feedback, label, "B" if label == "A" else "A")
            completion = f"{feedback}\n\n{verdict_sentence(label)}" if feedback else verdict_sentence(label)
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        if fmt == "chat":
            records.append({"messages": messages, "label": label, "pair_id": pair.pair_id, "order": order})
        else:
            records.append({"prompt": prompt, "completion": completion, "messages": messages, "label": label,
                            "pair_id": pair.pair_id, "order": order})
    return records


def _token_stats(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)
    return {"count": len(ordered), "min": ordered[0], "mean": round(sum(ordered) / len(ordered), 1),
            "p50": ordered[len(ordered) // 2], "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
            "max": ordered[-1]}


def _record_text(record: dict[str, Any]) -> str:
    if "completion" in record:
        return f"{record['prompt']}{record['completion']}"
    if "messages" in record:
        return "".join(m["content"] for m in record["messages"])
    return f"{record['prompt']}{record['chosen']}"


def write_export(
    pairs: Iterable[ExportPair], out_dir: Path, options: ExportOptions, *, filter_spec: list[str],
    created_at: str, progress: Any = None,
) -> ExportManifest:
    """Write every format's split files and manifest.json under `out_dir`; return the manifest."""
    options.check()
    tokenizer = _load_tokenizer(options.tokenizer) if options.tokenizer else None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handles = {}
        for fmt in options.formats:
            (out_dir / fmt).mkdir(exist_ok=True)
            for split in SPLITS:
                handles[(fmt, split)] = (out_dir / fmt / f"{split}.jsonl").open("w", encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"cannot write export to {out_dir}: {exc.strerror}") from None
    ids_digest = hashlib.sha256()
    pair_ids: list[int] = []
    by_source: Counter[str] = Counter()
    pairs_by_split: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = {fmt: Counter() for fmt in options.formats}
    lengths: dict[str, dict[str, list[int]]] = {fmt: {s: [] for s in SPLITS} for fmt in options.formats}
    try:
        for pair in pairs:
            pair_ids.append(pair.pair_id)
            by_source[pair.source] += 1
            split = split_of(pair.pair_id, options.seed, options.validation_fraction)
            pairs_by_split[split] += 1
            for fmt in options.formats:
                for record in pair_records(pair, fmt, options):
                    handles[(fmt, split)].write(json.dumps(record, ensure_ascii=False) + "\n")
                    counts[fmt][split] += 1
                    if tokenizer is not None:
                        lengths[fmt][split].append(len(tokenizer(_record_text(record))["input_ids"]))
            if progress is not None:
                progress(len(pair_ids))
    finally:
        for handle in handles.values():
            handle.close()
    for pair_id in sorted(pair_ids):
        ids_digest.update(f"{pair_id}\n".encode())
    files = [f"{fmt}/{split}.jsonl" for fmt in options.formats for split in SPLITS]
    if options.parquet or options.hf:
        files += _write_columnar(out_dir, options)
    manifest = {
        "version": EXPORT_VERSION, "prompt_version": PROMPT_VERSION, "created_at": created_at,
        "filter": filter_spec, "pair_count": len(pair_ids), "pair_ids_hash": ids_digest.hexdigest(),
        "pairs_by_source": dict(sorted(by_source.items())), "pairs_by_split": dict(pairs_by_split),
        "records": {fmt: {s: counts[fmt][s] for s in SPLITS} for fmt in options.formats},
        "options": {"formats": list(options.formats), "both_orders": options.both_orders,
                    "strip_comments": options.strip, "seed": options.seed,
                    "validation_fraction": options.validation_fraction, "tokenizer": options.tokenizer},
        "files": files,
    }
    if tokenizer is not None:
        manifest["token_lengths"] = {fmt: {s: _token_stats(lengths[fmt][s]) for s in SPLITS} for fmt in options.formats}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return ExportManifest(manifest)


def _load_tokenizer(name: str) -> Any:
    # Deferred: transformers is an optional, heavy dependency needed only for token statistics.
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except ImportError:
        raise OptionError("token statistics need the ml extra (pip install -e '.[ml]')") from None
    except (OSError, ValueError) as exc:
        raise OptionError(f"cannot load tokenizer {name!r}: {str(exc).splitlines()[0]}") from None


def _write_columnar(out_dir: Path, options: ExportOptions) -> list[str]:
    try:
        import pyarrow.json as pa_json
        import pyarrow.parquet as pq
    except ImportError:
        raise OptionError("parquet and datasets output need the ml extra (pip install -e '.[ml]')") from None
    written = []
    for fmt in options.formats:
        tables = {}
        for split in SPLITS:
            source = out_dir / fmt / f"{split}.jsonl"
            tables[split] = pa_json.read_json(source) if source.stat().st_size else None
            if options.parquet and tables[split] is not None:
                pq.write_table(tables[split], out_dir / fmt / f"{split}.parquet")
                written.append(f"{fmt}/{split}.parquet")
        if options.hf:
            from datasets import Dataset, DatasetDict

            DatasetDict({s: Dataset(t) for s, t in tables.items() if t is not None}).save_to_disk(str(out_dir / fmt / "hf"))
            written.append(f"{fmt}/hf")
    return written


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL export file."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
