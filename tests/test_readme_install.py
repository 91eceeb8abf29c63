"""README: the CPU-torch note comes before the quick start's commands, with a pinned
PyPI install beside the extra-index form, at the torch version CI and the Justfile use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _pinned(text: str) -> set[str]:
    return set(re.findall(r"torch==(\d+\.\d+\.\d+)", text))


def test_cpu_torch_note_precedes_the_quick_start_commands() -> None:
    quick = README[README.index("## Quick start") :]
    first_install = quick.index("pip install -e .")
    extra_index = quick.find("--index-url https://download.pytorch.org/whl/cpu")
    pypi_alone = re.search(r"pip install\s+torch==\d", quick)
    assert pypi_alone is not None and pypi_alone.start() < first_install
    assert 0 <= extra_index < first_install
    note = quick[:first_install]
    for platform in ("macOS arm64", "Windows x86-64", "Linux x86-64"):
        assert platform in note
    assert "PyPI has no CPU-only torch for Linux" in note


def test_the_pinned_torch_is_the_one_ci_and_the_justfile_install() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    just = (ROOT / "Justfile").read_text(encoding="utf-8")
    quick = README[README.index("## Quick start") : README.index("## Search spaces")]
    assert _pinned(quick) == _pinned(ci) == _pinned(just) == {"2.13.0"}
