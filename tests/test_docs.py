"""The documents a newcomer follows: the README's set-up is what CI runs, every link lands, and no
build machine's paths leak into what ships."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "examples").rglob("*.md")), ROOT / "firmware_configs" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def setup_commands() -> list[str]:
    """The shell lines of the README's "Try it" block."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Try it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_ci_runs_the_readme_set_up_verbatim():
    first, second = setup_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    # The apt parts are CI's own step (as root, no sudo); the rest must be the README's words.
    install_and_run = first.split("python3 -m venv .venv && ", 1)[1]
    tests = second.split("openssl && ", 1)[1]
    assert "python3 -m venv .venv" in ci
    assert install_and_run in ci and tests in ci
    assert tests.endswith(".venv/bin/python -m pytest")
    for package in re.findall(r"install -y (?:--no-install-recommends )?([\w\- ]+?) &&", second)[0].split():
        assert package in ci, f"CI does not install {package}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands(document):
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue                                   # https:, mailto:
        path, _, anchor = target.partition("#")
        destination = (document.parent / path).resolve() if path else document
        assert destination.exists(), f"{document.name}: {target} does not exist"
        if anchor and destination.suffix == ".md":
            headings = [slug(h) for h in re.findall(r"^#+ (.+)$", destination.read_text(), re.M)]
            assert anchor in headings, f"{document.name}: no heading #{anchor} in {path or document.name}"


def test_the_front_page_and_the_model_summary_stay_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
    assert len((ROOT / "docs" / "models.md").read_text().splitlines()) <= 250


def test_nothing_that_ships_names_the_build_machine():
    shipped = [*DOCUMENTS, *(ROOT / "sdk" / "affectlite" / "models").glob("*.json"),
               *(ROOT / "sdk" / "affectlite" / "models").glob("*.md")]
    for path in shipped:
        found = re.findall(r"(?<![\w.])/(?:root|home|tmp|work)/[^\s`'\")]*", path.read_text())
        assert not found, f"{path.relative_to(ROOT)}: {found[:3]}"


def test_one_version_read_from_the_package_metadata():
    import tomllib

    import affectlite

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert affectlite.__version__ == declared != "0.1.0"
    assert f"## [{declared}]" in (ROOT / "CHANGELOG.md").read_text()
