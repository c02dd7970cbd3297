"""Training-set export: classification, generation, DPO and chat records in the pairwise layout,
a deterministic train/validation split, optional parquet and `datasets` copies, and a manifest.

Layout under the output folder: `manifest.json`, and per format `FORMAT/train.jsonl` and
`FORMAT/validation.jsonl` (plus `FORMAT/train.parquet`, `FORMAT/validation.parquet` and a
`datasets` DatasetDict in `FORMAT/hf/` when asked). The folder holds exactly the files the manifest
lists: an export is written into a fresh sibling and replaces the folder only when complete, and
only an earlier export (a folder with our manifest) is ever replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import OptionError
from core.evaluation.prompts import PROMPT_VERSION
from core.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES, get_protocol, name_codes_by_position, place
from core.outputs import check_output_folder, staged_folder, writable_folder

FORMATS = ("classification", "generation", "dpo", "chat")
DEFAULT_FORMATS = ("classification", "generation", "dpo")
SPLITS = ("train", "validation")
EXPORT_VERSION = "export-v2"
MANIFEST = "manifest.json"
NAMES_NEITHER_CODE = "feedback names neither code"


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
    group: str = ""  # the pair's `meta.group` (Code-Optimise: the problem id), the DPO draw's unit


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
    protocol: str = DEFAULT_PROTOCOL

    def check(self) -> None:
        """Raise OptionError for unknown formats or protocol, or a split fraction outside [0, 1)."""
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise OptionError(f"unknown export format(s) {', '.join(unknown) or '(none)'}; use {', '.join(FORMATS)}")
        if self.protocol not in PROTOCOL_NAMES:
            raise OptionError(f"unknown protocol {self.protocol!r}; choose from {', '.join(PROTOCOL_NAMES)}")
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
    """Name the codes as [CODE_A]/[CODE_B] (see `name_codes_by_position`); the text as is if it names neither."""
    named = name_codes_by_position(feedback, "A" if chosen_label == "A" else "B")
    return feedback.strip() if named is None else named


class BalancedOrder:
    """Which code comes first when a pair is exported in one order only: seeded, balanced per split.

    Within each split, pairs go two by two: a seeded coin on the first pair's id puts its chosen
    code first or second, and the next pair gets the other order, so "A" and "B" labels differ by
    at most one.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._open: dict[str, bool] = {}

    def chosen_first(self, pair_id: int, split: str) -> bool:
        """True when this pair's chosen code is [CODE_A]."""
        if split in self._open:
            return not self._open.pop(split)
        digest = hashlib.sha256(f"order:{self.seed}:{pair_id}".encode()).digest()
        self._open[split] = bool(digest[0] & 1)
        return self._open[split]


def split_of(pair_id: int, seed: int, validation_fraction: float) -> str:
    """The split of a pair: a hash of seed and id, so both orders of a pair land together."""
    digest = hashlib.sha256(f"{seed}:{pair_id}".encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "big") / 2**64 < validation_fraction else "train"


def pair_records(
    pair: ExportPair, fmt: str, options: ExportOptions, *, chosen_first: bool | None = None,
    dropped: Counter[str] | None = None,
) -> list[dict[str, Any]]:
    """The records one pair contributes to one format (one per order, or one for DPO).

    Prompts and targets follow `options.protocol`. With one order only, `chosen_first` says which
    (default: a seeded coin on the pair id). A generation example whose feedback names neither code
    is left out and counted in `dropped`.
    """
    protocol = get_protocol(options.protocol)
    chosen, rejected = protocol.strip_pair(pair.chosen, pair.rejected) if options.strip else (pair.chosen, pair.rejected)
    if fmt == "dpo":
        record: dict[str, Any] = {"prompt": pair.instruction, "chosen": chosen, "rejected": rejected,
                                  "pair_id": pair.pair_id}
        if pair.group:  # read by core.training.preference to draw one pair per group each epoch
            record["group"] = pair.group
        return [record]
    if options.both_orders:
        orders: tuple[bool, ...] = (True, False)
    else:
        orders = (BalancedOrder(options.seed).chosen_first(pair.pair_id, "") if chosen_first is None else chosen_first,)
    records = []
    for first in orders:
        code_a, code_b, label = place(chosen, rejected, first)
        order = "chosen_first" if first else "rejected_first"
        if fmt in ("generation", "chat"):
            target = protocol.generation_target(pair.feedback, label)
            if target is None:
                if dropped is not None:
                    dropped[NAMES_NEITHER_CODE] += 1
                continue
            completion = target
            prompt = protocol.generation_prompt(pair.instruction, code_a, code_b, pair.criteria)
        else:
            prompt = protocol.classification_prompt(pair.instruction, code_a, code_b, pair.criteria)
            completion = label
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        if fmt == "chat":
            records.append({"messages": messages, "label": label, "pair_id": pair.pair_id, "order": order,
                            "protocol": protocol.name})
        else:
            records.append({"prompt": prompt, "completion": completion, "messages": messages, "label": label,
                            "pair_id": pair.pair_id, "order": order, "protocol": protocol.name})
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
    created_at: str, progress: Any = None, replace: bool = True,
) -> ExportManifest:
    """Write every format's split files and manifest.json as the folder `out_dir`; return the manifest.

    Written into a fresh sibling folder that replaces `out_dir` when complete: `out_dir` then holds
    this export's files only. An error or a cancel (an exception from `progress`) leaves `out_dir`
    as it was. An existing `out_dir` must be empty or (with `replace`) an earlier export
    (`is_export_folder`), else OptionError and nothing is deleted.
    """
    options.check()
    tokenizer = _load_tokenizer(options.tokenizer) if options.tokenizer else None
    with staged_folder(out_dir, replaceable=is_export_folder if replace else _never) as staging:
        return _write_files(pairs, staging, options, tokenizer, filter_spec=filter_spec, created_at=created_at,
                            progress=progress)


def _never(folder: Path) -> bool:
    return False


def is_export_folder(folder: Path) -> bool:
    """Whether `folder` holds an export this module wrote: a manifest.json with our version tag and file list."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError):
        return False
    return (isinstance(manifest, dict) and str(manifest.get("version", "")).startswith("export-")
            and isinstance(manifest.get("files"), list))


def check_export_folder(out_dir: str | Path, *, replace: bool, what: str = "--out",
                        replace_option: str | None = None) -> Path:
    """The folder an export will be written as: new or empty, or (with `replace`) an earlier export,
    which the new one replaces; its parent must take a new folder. Raises OptionError; creates nothing."""
    out = Path(out_dir).expanduser()
    if out.is_dir() and any(out.iterdir()):
        ours = is_export_folder(out)
        if not ours:
            raise OptionError(f"{what} {out}: the folder is not empty and is not a workbench export "
                              f"(no {MANIFEST} of ours); choose a new folder")
        if not replace:
            hint = f", or pass {replace_option} to replace it" if replace_option else ""
            raise OptionError(f"{what} {out}: the folder holds an earlier export; choose a new folder{hint}")
    check_output_folder(out, what=what, allow_existing=True)
    parent = out.resolve().parent
    if parent.exists() and not writable_folder(parent):
        raise OptionError(f"{what} {out}: cannot write beside it ({parent} is not a writable folder)")
    return out


def _write_files(
    pairs: Iterable[ExportPair], out_dir: Path, options: ExportOptions, tokenizer: Any, *, filter_spec: list[str],
    created_at: str, progress: Any,
) -> ExportManifest:
    try:
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
    dropped: dict[str, Counter[str]] = {fmt: Counter() for fmt in options.formats}
    balance = BalancedOrder(options.seed)
    lengths: dict[str, dict[str, list[int]]] = {fmt: {s: [] for s in SPLITS} for fmt in options.formats}
    try:
        for pair in pairs:
            pair_ids.append(pair.pair_id)
            by_source[pair.source] += 1
            split = split_of(pair.pair_id, options.seed, options.validation_fraction)
            pairs_by_split[split] += 1
            chosen_first = None if options.both_orders else balance.chosen_first(pair.pair_id, split)
            for fmt in options.formats:
                for record in pair_records(pair, fmt, options, chosen_first=chosen_first, dropped=dropped[fmt]):
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
        "version": EXPORT_VERSION, "prompt_version": PROMPT_VERSION, "protocol": options.protocol,
        "created_at": created_at,
        "filter": filter_spec, "pair_count": len(pair_ids), "pair_ids_hash": ids_digest.hexdigest(),
        "pairs_by_source": dict(sorted(by_source.items())), "pairs_by_split": dict(pairs_by_split),
        "records": {fmt: {s: counts[fmt][s] for s in SPLITS} for fmt in options.formats},
        "dropped": {fmt: dict(dropped[fmt]) for fmt in options.formats if dropped[fmt]},
        "options": {"formats": list(options.formats), "both_orders": options.both_orders,
                    "strip_comments": options.strip, "seed": options.seed, "protocol": options.protocol,
                    "validation_fraction": options.validation_fraction, "tokenizer": options.tokenizer},
        "files": files,
    }
    if tokenizer is not None:
        manifest["token_lengths"] = {fmt: {s: _token_stats(lengths[fmt][s]) for s in SPLITS} for fmt in options.formats}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
