"""The command line's help: every command describes itself, every option says what it
does, and no help text names an option its command does not accept."""
import argparse
import re

import pytest

from icalign import cli
from icalign.registry import load_builtin_experiments


def _commands() -> dict:
    """{name: parser} of the top-level parser and each subcommand's parser."""
    load_builtin_experiments()  # the --only help lists the experiments
    parser = cli._parser()
    commands = {"icalign": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands.update(action.choices)
    return commands


COMMANDS = _commands()


def test_every_subcommand_is_there():
    assert {"reproduce", "report", "plan"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_description_and_every_option_a_help(name):
    parser = COMMANDS[name]
    assert parser.description and parser.description.strip(), f"{name}: no description"
    missing = [", ".join(a.option_strings) or a.dest for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction)
               and not (a.help and a.help.strip())]
    assert not missing, f"{name}: options without a help text: {missing}"


# options of another command that a help names on purpose: report reads the folder
# that reproduce --out wrote
ELSEWHERE = {"report": {"--out"}}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_names_only_options_of_its_command(name):
    parser = COMMANDS[name]
    accepted = {s for a in parser._actions for s in a.option_strings}
    accepted |= ELSEWHERE.get(name, set())
    texts = [parser.description or ""] + [a.help or "" for a in parser._actions]
    named = {m for text in texts for m in re.findall(r"--[a-z][a-z-]*", text)}
    assert not named - accepted, f"{name}: its help names options it does not accept: " \
                                 f"{sorted(named - accepted)}"


def test_plan_takes_the_threads_per_worker_of_its_jobs(capsys):
    """``plan --jobs N --threads-per-worker T`` estimates the set-up that ``reproduce``
    runs with the same options (the --jobs help names both)."""
    assert cli.main(["plan", "--profile", "smoke", "--jobs", "2", "--threads-per-worker",
                     "2", "--assume"]) == 0
    assert "(2 local process(es) of 2 C-core thread(s) each)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["plan", "--profile", "smoke", "--threads-per-worker", "0", "--assume"])
    assert "--threads-per-worker must be >= 1, got 0" in capsys.readouterr().err


def test_install_hints_name_the_checkout_install_too():
    """The README installs from a checkout of the source (``pip install ".[plot]"``)."""
    scheduler = next(a for a in COMMANDS["reproduce"]._actions
                     if "--scheduler" in a.option_strings)
    assert "icalign[cluster]" in scheduler.help and "'.[cluster]'" in scheduler.help
