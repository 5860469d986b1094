"""Write the bundled encoder-decoders ``archs/NAME.yaml`` from their published configs ``archs/configs/NAME.json``.

    python scripts/gen_encdec_archs.py           # rewrite every archs/NAME.yaml listed in HUB
    python scripts/gen_encdec_archs.py --check   # exit 1, naming the stale files, if any is out of date

Each bundled file is ``symcost import hf`` of the stored config, named after the file, with its Hub model
in the summary and a comment saying where the config comes from. ``tests/test_hf_encdec.py`` imports each
config afresh and compares, so a file cannot drift from its config or from the importer.

The stored configs are the published ``config.json`` of each Hub repository below, written out as JSON (no
network is used). Left out: T5's ``task_specific_params`` (prompt prefixes) and Whisper's
``suppress_tokens``, ``forced_decoder_ids`` and ``_name_or_path`` (token ids and file names, not sizes).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symcost import hf  # noqa: E402

#: bundled name -> Hugging Face Hub repository of the config
HUB: dict[str, str] = {
    "t5_small": "google-t5/t5-small",
    "t5_base": "google-t5/t5-base",
    "whisper_tiny": "openai/whisper-tiny",
    "whisper_base": "openai/whisper-base",
    "whisper_small": "openai/whisper-small",
    "whisper_medium": "openai/whisper-medium",
    "whisper_large_v3": "openai/whisper-large-v3",
}


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
    header = (
        f"# {name}: {source}, the published config.json of {repo}\n"
        f"# ({url}), imported by scripts/gen_encdec_archs.py: do not edit by hand.\n"
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
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run scripts/gen_encdec_archs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
