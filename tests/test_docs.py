"""Documentation matches the code: every command is in the README; README examples run."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from nasfilter.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(t: typer.Typer, prefix: str = "") -> list[str]:
    out = []
    for c in t.registered_commands:
        name = c.name or (c.callback.__name__ if c.callback else "")
        out.append(f"{prefix}{name.replace('_', '-')}")
    for g in t.registered_groups:
        assert g.typer_instance is not None
        gname = g.name or g.typer_instance.info.name
        out.append(f"{prefix}{gname}")
        out.extend(_commands(g.typer_instance, f"{prefix}{gname} "))
    return out


def test_every_command_is_documented_in_the_readme() -> None:
    commands = _commands(app)
    assert {"score", "top", "sql", "export", "spaces"} <= set(commands)
    for cmd in commands:
        top = cmd.split()[0]
        assert f"nasfilter {top}" in README, f"`nasfilter {cmd}` is not documented in README.md"


def test_every_metric_is_documented_in_the_readme() -> None:
    from nasfilter.metrics import list_metrics

    for m in list_metrics():
        assert f"`{m.name}`" in README, f"metric {m.name} missing from README.md"


def test_every_space_is_documented_in_the_readme() -> None:
    from nasfilter.spaces import list_spaces

    for s in list_spaces():
        assert f"`{s.name}`" in README or f"`{s.name.removesuffix('-in')}`" in README, s.name
        assert (f"{s.size:,}" if s.size else "sampled") in README


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b).strip()
    assert test_cmd in ci.splitlines()


def test_published_numbers_in_the_readme_are_the_code_s() -> None:
    from nasfilter.spaces import get_space

    tss = get_space("nats-tss")
    cell = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    )
    assert f"{tss.costs(cell).params:,} parameters" in README
    assert f"relu_count(model, (1, 3, 32, 32))          # {tss.costs(cell).relu_count}" in README


def test_every_option_of_score_and_search_is_documented() -> None:
    """Each long option of `score` is in the README, each of `search` in docs/search.md."""
    cmd = typer.main.get_command(app)
    docs = {"score": README, "search": (ROOT / "docs" / "search.md").read_text("utf-8")}
    for name, text in docs.items():
        sub = cmd.commands[name]  # type: ignore[attr-defined]
        longs = [o for p in sub.params for o in p.opts if o.startswith("--")]
        assert "--memory-format" in longs
        missing = [o for o in longs if f"`{o}" not in text and o not in ("--help",)]
        assert not missing, f"`nasfilter {name}` options not documented: {missing}"
