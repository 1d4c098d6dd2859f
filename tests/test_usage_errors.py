"""Every command-line usage error of every verb is one line on stderr, exit status 2: the verb,
the flag (or argument), what it takes and an example, before anything runs."""

import argparse
import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import __main__ as entry
from bench.__main__ import main
from bench.cli import VERBS

VERB_PARSERS = (
    entry._parser(
        {
            verb: __import__(f"bench.cli.{verb.replace('-', '_')}", fromlist=["run"])
            for verb in VERBS
        }
    )
    ._subparsers._group_actions[0]
    .choices
)


def refusal(argv: list) -> str:
    """The one line ``python -m bench ARGV`` refuses it with (exit status 2, nothing run)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main([str(arg) for arg in argv])
        except SystemExit as stop:
            status = stop.code
    text = err.getvalue()
    assert status == 2, (argv, status, text)
    assert text.startswith("error: ") and text.count("\n") == 1, text
    return text


def options(verb: str) -> list:
    return [action for action in VERB_PARSERS[verb]._actions if action.option_strings]


def valued(verb: str) -> list:
    """The verb's flags that take a value."""
    return [action for action in options(verb) if action.nargs != 0]


def typed(verb: str) -> list:
    """The verb's flags whose value is converted or chosen: a word can be wrong for them."""
    return [a for a in valued(verb) if a.type in (int, float) or a.choices]


def wrong_for(action, text: str) -> bool:
    if action.choices:
        return text not in action.choices
    try:
        action.type(text)
    except ValueError:
        return True
    return False


VERBS_WITH_REQUIRED = [
    verb
    for verb in VERBS
    if any(action.required for action in VERB_PARSERS[verb]._actions if action.dest != "help")
]
# What each verb requires, given: the error tested is then the only one.
REQUIRED = {
    "sweep": ["--vary", "training.seed=1,2"],
    "report": ["results/FOLDER"],
    "compare": ["results/A", "results/B"],
    "history": ["results/A"],
    "verify": ["my_recipe.py"],
    "new-recipe": ["my_recipe"],
}
WORDS = st.text(alphabet="abcxyz_.0123456789", min_size=0, max_size=8)


@settings(max_examples=60, deadline=None)
@given(verb=st.sampled_from(VERBS), name=st.text(alphabet="qwz", min_size=1, max_size=6))
def test_an_unknown_flag_is_one_line_naming_it(verb, name):
    flag = f"--{name}"
    if any(o.startswith(flag) for a in options(verb) for o in a.option_strings):
        return  # an abbreviation of one of the verb's flags
    line = refusal([verb, *REQUIRED.get(verb, []), flag])
    assert f"python -m bench {verb}: {flag} is not an argument" in line and "--help" in line


@settings(max_examples=80, deadline=None)
@given(data=st.data(), verb=st.sampled_from([verb for verb in VERBS if typed(verb)]))
def test_a_value_a_flag_cannot_take_is_one_line_with_an_example(data, verb):
    action = data.draw(st.sampled_from(typed(verb)))
    value = data.draw(WORDS.filter(lambda text: wrong_for(action, text)))
    flag = action.option_strings[-1]
    line = refusal([verb, *REQUIRED.get(verb, []), f"{flag}={value}"])
    assert f"python -m bench {verb}: {flag}:" in line and f"e.g. {flag} " in line


@settings(max_examples=60, deadline=None)
@given(data=st.data(), verb=st.sampled_from([verb for verb in VERBS if valued(verb)]))
def test_a_flag_without_its_value_is_one_line_with_an_example(data, verb):
    action = data.draw(st.sampled_from(valued(verb)))
    flag = action.option_strings[-1]
    line = refusal([verb, *REQUIRED.get(verb, []), flag])
    assert f"{flag}: expected" in line and f"e.g. {flag} " in line


@pytest.mark.parametrize("verb", VERBS_WITH_REQUIRED)
def test_a_verb_without_what_it_requires_is_one_line_with_an_example(verb):
    line = refusal([verb])
    assert "is required; it takes" in line and "e.g. " in line


@pytest.mark.parametrize(
    "argv, says",
    [
        (["run", "--repeats", "abc"], "--repeats: invalid int value: 'abc'; it takes N"),
        (["sweep"], "--vary is required; it takes SETTING=V1,V2"),
        (["history"], "FOLDER is required"),
        (["run", "--executor", "slurm"], "--executor: invalid choice: 'slurm'"),
        (["run", "--budget", "-5m"], "--budget '-5m' is not a duration"),
        (["sweep", "--vary", "training.seed=1,2", "--budget", "10m"], "sweep takes no --budget"),
        (["verify"], "PATH is required; it takes PATH"),
        (["check", "--yardstick-tolerance", "abc"], "--yardstick-tolerance: invalid float"),
        (["check", "--yardstick-tolerance", ""], "--yardstick-tolerance: invalid float"),
        ([], "verb is required"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_the_usage_errors_users_met_are_one_line(argv, says):
    assert says in refusal(argv)


def test_help_is_still_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--help"])
    assert stop.value.code == 0 and "--recipes" in capsys.readouterr().out


def test_every_verb_with_requirements_is_known_here():
    assert set(VERBS_WITH_REQUIRED) == set(REQUIRED)


def test_the_parser_of_every_verb_is_one_line_kind():
    assert all(isinstance(parser, argparse.ArgumentParser) for parser in VERB_PARSERS.values())
    assert {type(parser).__name__ for parser in VERB_PARSERS.values()} == {"UsageParser"}
