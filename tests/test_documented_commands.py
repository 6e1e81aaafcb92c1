"""The commands, paths and links the docs give a reader still work: nothing here runs a model or Java.

Every ``python -m pyserini_llama.X ...`` (or ``torchrun ... -m pyserini_llama.X``, or a ``pyserini-llama-*``
console script) in README.md, docs/*.md and the model cards, in a fenced code block or an inline code span, is
parsed by its command's own parser (and, for ``train``, checked by the same validation the command runs before
loading anything), so a renamed or removed flag fails here with the file and line instead of in a reader's
terminal. docs/history.md is left out: it records old commands as they were run. The ``reproduce/`` and
``benchmarks/`` paths the docs name must exist, and relative links between the pages must resolve, anchors
included (GitHub's heading slugs).
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import importlib
import io
import logging
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HISTORY = REPO / "docs" / "history.md"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MODEL_CARDS = sorted((REPO / "pyserini_llama" / "models").glob("*/README.md"))
COMMAND_DOCS = [p for p in PAGES if p != HISTORY] + MODEL_CARDS
LINK_DOCS = PAGES + MODEL_CARDS

# Module names that run another command's __main__ (kept for old instructions).
ALIASES = {"pyserini_llama.training.export": "pyserini_llama.export"}
# Spans that name a command with a placeholder instead of arguments (prose, not something to paste).
PLACEHOLDERS = {"SWEEP"}
# Inline spans that show one flag or subcommand of a command in a sentence, not a whole command line.
FRAGMENTS = {"python -m pyserini_llama.eval --complete", "python -m pyserini_llama.ablate length"}
MIN_COMMANDS = 40  # parsed commands; fewer means the extraction broke, not that the docs shrank this much

SHELL_SEPARATORS = {"&&", "||", "|", ";", "&"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PYTHON = re.compile(r"^(\$\{?PYTHON\}?|(.*/)?python[0-9.]*)$")
SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Command:
    path: Path
    line: int
    text: str
    module: str  # pyserini_llama.X as written
    argv: tuple[str, ...]
    partial: bool  # a name with alternatives, "..." or a placeholder: the module is checked, not the flags

    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


@functools.cache
def console_scripts() -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options.entry_points"]["console_scripts"].strip().splitlines()
    pairs = (line.split("=", 1) for line in lines)
    return {name.strip(): target.strip().partition(":")[0].removesuffix(".__main__") for name, target in pairs}


def fenced_lines(text: str):
    """(line number, line, inside a fence) for every line of a markdown file."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            yield number, line, None
            continue
        yield number, line, inside


def code_block_commands(text: str):
    """Shell lines of fenced blocks, backslash continuations joined; commented-out commands count too."""
    logical, start = "", 0
    for number, line, inside in fenced_lines(text):
        if not inside:
            logical = ""
            continue
        if not logical:
            start = number
        stripped = line.strip()
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        yield start, logical.lstrip("# ").strip()
        logical = ""


def inline_commands(text: str):
    """Inline code spans outside fences; a span may wrap over the lines of one paragraph (or table row)."""
    paragraph: list[tuple[int, str]] = []

    def flush():
        joined = "\n".join(line for _, line in paragraph)
        for match in INLINE_CODE.finditer(joined):
            number = paragraph[0][0] + joined.count("\n", 0, match.start())  # the line the span starts on
            yield number, match.group(1).replace("\n", " ").replace("\\|", "|")
        paragraph.clear()

    for number, line, inside in fenced_lines(text):
        if inside is False and line.strip():
            paragraph.append((number, line))
        else:
            yield from flush()
    yield from flush()


def segments(tokens: list[str]):
    """A shell line's simple commands: split at && || | ; & and cut at a redirection."""
    current: list[str] = []
    redirected = False
    for token in tokens:
        if token in SHELL_SEPARATORS:
            if current:
                yield current
            current, redirected = [], False
        elif re.match(r"^[0-9]?[<>]", token):
            redirected = True
        elif not redirected:
            current.append(token)
    if current:
        yield current


def as_command(path: Path, line: int, text: str) -> list[Command]:
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return []
    found = []
    for words in segments(tokens):
        while words and ENV_ASSIGNMENT.match(words[0]):
            words = words[1:]
        if not words:
            continue
        if words[0] in console_scripts():
            module, argv = console_scripts()[words[0]], words[1:]
        elif PYTHON.match(words[0]) or words[0] == "torchrun":
            if "-m" not in words:
                continue
            at = words.index("-m")
            if at + 1 >= len(words) or not words[at + 1].startswith("pyserini_llama"):
                continue
            if words[0] != "torchrun" and at != 1:
                continue
            module, argv = words[at + 1], words[at + 2 :]
        else:
            continue
        argv = [SHELL_VARIABLE.sub("0", word) for word in argv]  # a loop's $i, the docs' $D/...: some value
        partial = text in FRAGMENTS or any("|" in w or "..." in w or "…" in w or w in PLACEHOLDERS for w in argv)
        found.append(Command(path, line, text, module, tuple(argv), partial))
    return found


def documented_commands() -> list[Command]:
    commands = []
    for path in COMMAND_DOCS:
        text = path.read_text(encoding="utf-8")
        for line, snippet in [*code_block_commands(text), *inline_commands(text)]:
            if "pyserini_llama" in snippet or "pyserini-llama-" in snippet:
                commands.extend(as_command(path, line, snippet))
    return commands


COMMANDS = documented_commands()
FULL = [c for c in COMMANDS if c.argv and not c.partial]


def command_module(name: str):
    name = ALIASES.get(name, name)
    return importlib.import_module(f"{name}.__main__")


def _check_train(main, args, command: Command) -> None:
    """The validation ``train`` runs before loading anything (e.g. RankLLaMA refuses --passage-max-length).

    The default device is fixed (cuda under torchrun, else cpu) so the result does not depend on this machine.
    """
    from pyserini_llama.training import arguments

    device = "cuda" if command.text.lstrip().startswith("torchrun") else "cpu"
    saved = arguments._default_device
    arguments._default_device = lambda: device
    try:
        main.arguments_from(args)
    finally:
        arguments._default_device = saved


def _check_eval(main, args, command: Command) -> None:
    from pyserini_llama.eval import parse_metric

    for metric in args.metrics:
        parse_metric(metric)


POST_PARSE_CHECKS = {"pyserini_llama.train": _check_train, "pyserini_llama.eval": _check_eval}


def parse_command(command: Command) -> None:
    """Parse ``command.argv`` as the command does, without running it; raises on anything it would refuse."""
    main = command_module(command.module)
    argv = list(command.argv)
    if hasattr(main, "build_parsers"):  # encode: Pyserini's input ... output ... encoder ... sections
        parsers = main.build_parsers()
        groups = main.split_subcommands(argv, main.COMMANDS)
        leftover = parsers[""].parse_known_args(groups[""])[1]
        missing = [c for c in main.COMMANDS if c not in groups]
        if leftover or missing:
            raise ValueError(f"unexpected {leftover} or missing sections {missing}")
        for section in main.COMMANDS:
            parsers[section].parse_args(groups[section])
        return
    args = main.build_parser().parse_args(argv)
    check = POST_PARSE_CHECKS.get(ALIASES.get(command.module, command.module))
    if check is not None:
        check(main, args, command)


def test_enough_commands_were_found():
    print(f"{len(FULL)} documented commands parsed, {len(COMMANDS) - len(FULL)} names or partial spans")
    assert len(FULL) >= MIN_COMMANDS, [c.where() for c in COMMANDS]
    modules = {ALIASES.get(c.module, c.module) for c in FULL}
    assert {"pyserini_llama.encode", "pyserini_llama.train", "pyserini_llama.rerank", "pyserini_llama.pipeline"} <= (
        modules
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where() for c in COMMANDS])
def test_documented_command_names_a_command(command):
    assert ALIASES.get(command.module, command.module) in set(console_scripts().values()), (
        f"{command.where()}: {command.module} is not a command: {command.text}"
    )
    assert callable(getattr(command_module(command.module), "main", None))


@pytest.mark.parametrize("command", FULL, ids=[c.where() for c in FULL])
def test_documented_command_parses(command):
    root = logging.getLogger()
    level = root.level
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parse_command(command)
    except SystemExit as exit:
        if exit.code:
            pytest.fail(f"{command.where()}: {stderr.getvalue().strip()}\n  {command.text}")
    except Exception as error:  # a validation error the command raises before any work
        pytest.fail(f"{command.where()}: {type(error).__name__}: {error}\n  {command.text}")
    finally:
        root.setLevel(level)


def test_a_stale_rankllama_length_flag_is_caught():
    """The check above is not argparse alone: train rankllama with RepLLaMA's passage flag must fail."""
    stale = as_command(
        REPO / "README.md",
        0,
        "python -m pyserini_llama.train rankllama --model m --train t --output o --passage-max-length 64",
    )[0]
    with pytest.raises(Exception, match="--passage-max-length is RepLLaMA's"):
        parse_command(stale)


# ---------------------------------------------------------------------------- paths and links
SCRIPT_PATH = re.compile(r"(?<![\w./-])((?:reproduce|benchmarks)/[\w.\-/]*[\w])")


def mentioned_paths():
    for path in COMMAND_DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in SCRIPT_PATH.finditer(line):
                yield path, number, match.group(1)


PATHS = sorted(set(mentioned_paths()))


def test_enough_paths_were_found():
    assert len(PATHS) >= 20


@pytest.mark.parametrize("mention", PATHS, ids=[f"{p.relative_to(REPO)}:{n}:{s}" for p, n, s in PATHS])
def test_mentioned_script_exists(mention):
    path, number, script = mention
    assert (REPO / script).exists(), f"{path.relative_to(REPO)}:{number}: {script} does not exist"


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link's text
    text = text.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.cache
def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line, inside in fenced_lines(path.read_text(encoding="utf-8")):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line) if inside is False else None
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            out.add(slug if count == 0 else f"{slug}-{count}")
    return out


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def relative_links():
    for path in LINK_DOCS:
        for number, line, inside in fenced_lines(path.read_text(encoding="utf-8")):
            if inside is not False:
                continue
            for match in LINK.finditer(line):
                target = match.group(1)
                if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # not http:, mailto:, ...
                    yield path, number, target


LINKS = list(relative_links())


def test_enough_links_were_found():
    assert len(LINKS) >= 30


@pytest.mark.parametrize("link", LINKS, ids=[f"{p.relative_to(REPO)}:{n}:{t}" for p, n, t in LINKS])
def test_relative_link_resolves(link):
    path, number, target = link
    file, _, anchor = target.partition("#")
    resolved = (path.parent / file).resolve() if file else path
    where = f"{path.relative_to(REPO)}:{number}: {target}"
    assert resolved.exists(), f"{where}: no such file"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{where}: no heading with that anchor in {resolved.name}"
