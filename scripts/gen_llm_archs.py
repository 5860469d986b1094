"""Write the bundled Hub models ``archs/NAME.yaml`` from their published configs ``archs/configs/NAME.json``.

    python scripts/gen_llm_archs.py           # rewrite every archs/NAME.yaml listed in HUB
    python scripts/gen_llm_archs.py --check   # exit 1, naming the stale files, if any is out of date

Each bundled file is ``symcost import hf`` of the stored config with three changes a catalog needs:
its ``name`` is the file's stem (the importer names a model after its folder), its ``summary`` starts
with the Hub model it is, and a comment above says where the config comes from. ``tests/test_llm_bundled.py``
generates each file afresh and compares, so a file cannot drift from its config or from the importer.

The stored configs are the published ``config.json`` of each Hub repository below, written out as JSON
(no network is used; ``_name_or_path`` and remote-code ``auto_map`` entries, which name files rather than
sizes, are left out, and so are T5's ``task_specific_params`` (prompt prefixes) and Whisper's
``suppress_tokens`` and ``forced_decoder_ids`` (token ids)). ``archs/configs/README.md`` names, for each
file, the public copy it was compared with field by field and the fields no copy could confirm.
``gemma3_4b.json`` is the ``text_config`` of google/gemma-3-4b-pt (a Gemma3ForConditionalGeneration whose
text tower is a gemma3_text model) with the Gemma3TextConfig defaults it relies on written out (8 heads,
4 KV heads of 256, vocab 262,208, ...).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symcost import hf  # noqa: E402

#: bundled name -> Hugging Face Hub repository of the config, by kind of model (the tests pick theirs);
#: every archs/configs/NAME.json is listed once, in HUB
DENSE: dict[str, str] = {
    "mistral_7b": "mistralai/Mistral-7B-v0.1",
    "qwen2_5_0_5b": "Qwen/Qwen2.5-0.5B",
    "qwen2_5_1_5b": "Qwen/Qwen2.5-1.5B",
    "qwen2_5_3b": "Qwen/Qwen2.5-3B",
    "qwen2_5_7b": "Qwen/Qwen2.5-7B",
    "qwen2_5_14b": "Qwen/Qwen2.5-14B",
    "qwen2_5_32b": "Qwen/Qwen2.5-32B",
    "qwen2_5_72b": "Qwen/Qwen2.5-72B",
    "qwen3_0_6b": "Qwen/Qwen3-0.6B",
    "qwen3_8b": "Qwen/Qwen3-8B",
    "gemma2_2b": "google/gemma-2-2b",
    "gemma2_9b": "google/gemma-2-9b",
    "gemma3_1b": "google/gemma-3-1b-pt",
    "gemma3_4b": "google/gemma-3-4b-pt",
    "phi3_mini": "microsoft/Phi-3-mini-4k-instruct",
    "llama3_1_8b": "meta-llama/Llama-3.1-8B",
    "llama3_1_70b": "meta-llama/Llama-3.1-70B",
    "llama3_1_405b": "meta-llama/Llama-3.1-405B",
}
MOE: dict[str, str] = {
    "mixtral_8x7b": "mistralai/Mixtral-8x7B-v0.1",
    "qwen3_moe": "Qwen/Qwen3-30B-A3B",
    "deepseek_v2_lite": "deepseek-ai/DeepSeek-V2-Lite",
    "deepseek_v3": "deepseek-ai/DeepSeek-V3",
}
ENCDEC: dict[str, str] = {
    "t5_small": "google-t5/t5-small",
    "t5_base": "google-t5/t5-base",
    "whisper_tiny": "openai/whisper-tiny",
    "whisper_base": "openai/whisper-base",
    "whisper_small": "openai/whisper-small",
    "whisper_medium": "openai/whisper-medium",
    "whisper_large_v3": "openai/whisper-large-v3",
}
HUB: dict[str, str] = DENSE | MOE | ENCDEC


def config_path(name: str) -> Path:
    return ROOT / "archs" / "configs" / f"{name}.json"


def bundled_yaml(name: str) -> str:
    """The text of ``archs/NAME.yaml``: the import of ``archs/configs/NAME.json``, named and sourced."""
    repo = HUB[name]
    source = f"archs/configs/{name}.json"
    text = hf.to_yaml(hf.read_config(config_path(name)), source)
    text, named = re.subn(r"(?m)^name: .*$", f'name: "{name}"', text, count=1)
    text, summed = re.subn(r'(?m)^summary: "', f'summary: "{repo.split("/")[-1]}: ', text, count=1)
    assert named == summed == 1, name
    url = f"https://huggingface.co/{repo}/blob/main/config.json"
    part = " (its text_config)" if name == "gemma3_4b" else ""
    header = (
        f"# {name}: {source}, the published config.json of {repo}{part}\n"
        f"# ({url}), imported by scripts/gen_llm_archs.py: do not edit by hand.\n"
    )
    return header + text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a bundled file is out of date")
    args = parser.parse_args()
    stale = []
    for name in HUB:
        path = ROOT / "archs" / f"{name}.yaml"
        text = bundled_yaml(name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python scripts/gen_llm_archs.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
