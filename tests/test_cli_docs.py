"""The CLI mirrors the facade and is documented: every command and option has help text, every
command is in README.md's CLI table, every service method is in docs/service.md, and every public
:class:`~edge.recommender.Recommender` method has a command of the same name whose options are its
parameter names (sqlite-utils' rule)."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest

from edge.cli import build_parser
from edge.cli.common import COMMON_DESTS
from edge.recommender import Recommender

ROOT = Path(__file__).resolve().parents[1]
#: Facade methods that are the object's lifecycle, not operations.
LIFECYCLE = {"open", "close"}


def _tree(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """``(path, parser, help)`` for every command and subcommand, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield prefix + (name,), sub, helps.get(name)
                yield from _tree(sub, prefix + (name,))


PARSER = build_parser()
TREE = {path: (sub, text) for path, sub, text in _tree(PARSER)}
TOP = {path[0]: sub for path, (sub, _) in TREE.items() if len(path) == 1}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def _facade_methods() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(Recommender).items()
            if inspect.isfunction(fn) and not name.startswith("_") and name not in LIFECYCLE}


# (a) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", list(TREE), ids=" ".join)
def test_every_command_and_option_has_help_text(path):
    sub, text = TREE[path]
    assert text and text.strip(), f"`edgerec {' '.join(path)}` has no help= in the command list"
    assert sub.description and sub.description.strip(), f"`edgerec {' '.join(path)}` has no description"
    for action in _options(sub):
        assert action.help and action.help.strip(), f"`edgerec {' '.join(path)}` {action.option_strings or action.dest}: no help"


# (b) -------------------------------------------------------------------------------------------

def _readme_cli_rows() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### CLI", 1)[1].split("\n### ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `edgerec ")]


def _first_cell(row: str) -> str:
    return re.split(r"(?<!\\)\|", row)[1]  # cells hold escaped pipes: audio\|frames


@pytest.mark.parametrize("path", list(TREE), ids=" ".join)
def test_every_command_is_in_the_readme_cli_table(path):
    rows = [r for r in _readme_cli_rows() if re.match(rf"\| `edgerec {re.escape(path[0])}[ `]", r)]
    assert rows, f"`edgerec {path[0]}` has no row in README.md's CLI table"
    if len(path) > 1:  # a subcommand: named in one of its group's rows
        assert any(re.search(rf"(?<![\w-]){re.escape(path[-1])}(?![\w-])", _first_cell(r)) for r in rows), \
            f"`edgerec {' '.join(path)}` is not named in README.md's CLI table"


def test_the_readme_cli_table_names_no_missing_command():
    for row in _readme_cli_rows():
        name = re.match(r"\| `edgerec ([\w-]+)", row).group(1)
        assert name in TOP, f"README.md's CLI table documents `edgerec {name}`, which does not exist"


# (c) -------------------------------------------------------------------------------------------

def test_every_service_method_is_in_docs_service_md():
    from edge.service import METHODS

    doc = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    missing = [m for m in METHODS if f"### `{m}`" not in doc]
    assert not missing, f"docs/service.md has no '### `name`' section for {missing}"


# (d) -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(_facade_methods()))
def test_every_facade_method_has_a_command(method):
    assert method.replace("_", "-") in TOP, f"Recommender.{method} has no `edgerec {method.replace('_', '-')}` command"


# (e) -------------------------------------------------------------------------------------------

def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


@pytest.mark.parametrize("method", sorted(_facade_methods()))
def test_command_options_are_the_facade_parameters(method):
    params = {n: p for n, p in _facade_methods()[method].parameters.items() if n != "self"}
    sub = TOP[method.replace("_", "-")]
    dests = {}
    for action in _options(sub):
        if action.dest in COMMON_DESTS:
            continue
        assert action.dest in params, (f"`edgerec {sub.prog.split()[-1]}` {action.option_strings or action.dest}: "
                                       f"Recommender.{method} has no parameter {action.dest!r}")
        p = params[action.dest]
        if action.option_strings:
            # --item-id for item_id; a repeatable option is singular: --tag fills tags, --kind fills kinds.
            want = {_flag(action.dest)} | ({_flag(action.dest[:-1])} if isinstance(action, argparse._AppendAction) else set())
            assert want & set(action.option_strings), f"{action.option_strings} fill {action.dest!r}; expected {sorted(want)}"
        if p.default is not inspect.Parameter.empty and not action.required:
            # A repeatable option starts as None (argparse appends to it) where the facade has ().
            same = action.default == p.default or (isinstance(action, argparse._AppendAction) and action.default is None
                                                   and p.default in ((), None))
            assert same, f"`edgerec {method}` {action.dest}: default {action.default!r}, Recommender.{method} has {p.default!r}"
        dests[action.dest] = action
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    absent = [n for n in required if n not in dests]
    assert not absent, f"`edgerec {method.replace('_', '-')}` has no option for Recommender.{method}'s {absent}"
    for n in required:
        a = dests[n]
        assert a.required or not a.option_strings, f"`edgerec {method}` {_flag(n)} must be required, as {method}'s {n} is"


def test_every_facade_command_opens_a_recommender_the_same_way():
    for method in _facade_methods():
        sub = TOP[method.replace("_", "-")]
        flags = {s for a in _options(sub) for s in a.option_strings}
        assert {"--bundle", "--db", "--device-profile"} <= flags, f"`edgerec {method}` lacks --bundle/--db/--device-profile"


_HOUSEHOLD = {m.replace("_", "-") for m, sig in _facade_methods().items() if "profile" in sig.parameters}
@pytest.mark.parametrize("path", TREE, ids=" ".join)
def test_profile_is_a_household_profile_everywhere(path):
    """``--device-profile`` is the hardware; ``--profile`` only ever names a household member,
    so it appears only on commands whose facade method takes ``profile``."""
    flags = {s for a in _options(TREE[path][0]) for s in a.option_strings}
    assert "--profile" not in flags or path[0] in _HOUSEHOLD, \
        f"`edgerec {' '.join(path)}` takes --profile but is no household command; a hardware profile is --device-profile"
