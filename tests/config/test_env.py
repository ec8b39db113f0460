"""config.env: where settings come from and how chat-ui's `.env` files are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.env import env_bool, env_int, env_list, load_env, parse_bool, parse_env_text


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def test_environment_wins_over_env_local_which_wins_over_env(tmp_path: Path) -> None:
    write(tmp_path / ".env", "A=from-env\nB=from-env\nC=from-env\n")
    write(tmp_path / ".env.local", "A=from-local\nB=from-local\n")
    env = load_env(tmp_path, environ={"A": "from-process"})
    assert env["A"] == "from-process"
    assert env["B"] == "from-local"
    assert env["C"] == "from-env"


def test_missing_files_give_just_the_environment(tmp_path: Path) -> None:
    assert load_env(tmp_path, environ={"X": "1"}) == {"X": "1"}


def test_backtick_value_spans_lines_and_is_kept_verbatim() -> None:
    text = (
        "# comment\n"
        "MODELS=`[\n"
        '  {"name": "a", "chatPromptTemplate": "{{content}}<|im_end|>\\n"}, // a JSON5 comment\n'
        '  {"name": "b # not a comment", "preprompt": "it\'s \\"quoted\\""}\n'
        "]`\n"
        "AFTER=yes\n"
    )
    env = parse_env_text(text)
    assert env["MODELS"] == (
        "[\n"
        '  {"name": "a", "chatPromptTemplate": "{{content}}<|im_end|>\\n"}, // a JSON5 comment\n'
        '  {"name": "b # not a comment", "preprompt": "it\'s \\"quoted\\""}\n'
        "]"
    )
    assert env["AFTER"] == "yes"


def test_backticks_on_one_line_with_export_and_trailing_comment() -> None:
    env = parse_env_text("export NAME=`Acme Chat` # the title\nOTHER=`a`\n")
    assert env == {"NAME": "Acme Chat", "OTHER": "a"}


def test_crlf_files_and_quotes_as_dotenv_reads_them() -> None:
    text = "A=\"double\\nline\"\r\nB='single $X'\r\nC=plain # comment\r\nD=${A}\r\nM=`x\r\ny`\r\n"
    env = parse_env_text(text)
    assert env["A"] == "double\nline"
    assert env["B"] == "single $X"
    assert env["C"] == "plain"
    assert env["D"] == "${A}"  # no interpolation: prompts may contain ${...}
    assert env["M"] == "x\ny"


def test_a_name_set_twice_keeps_the_last_value_in_file_order() -> None:
    env = parse_env_text("M=`first`\nM=second\nN=one\nN=`two\nlines`\n")
    assert env["M"] == "second"
    assert env["N"] == "two\nlines"


def test_reference_file_reads_unchanged(env_fixture) -> None:
    env = parse_env_text(env_fixture("reference.env.local"))
    assert env["MODELS"].startswith("[\n  {\n")
    assert env["MODELS"].endswith("}\n]")
    assert '"weight": 2, "authorization": "Basic VVNFUjpQQVNT"' in env["MODELS"]


# -- typed readings of one value ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        ("1", False, True),
        (" Yes ", False, True),
        ("ON", False, True),
        ("true", False, True),
        ("0", True, False),
        ("no", True, False),
        ("Off", True, False),
        ("FALSE", True, False),
        (None, True, True),
        ("", False, False),
        ("  ", True, True),
    ],
)
def test_parse_bool_reads_the_words_and_falls_back_on_unset(value, default, expected) -> None:
    assert parse_bool(value, default) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_parse_bool_refuses_anything_else_naming_the_variable(value) -> None:
    with pytest.raises(ValueError, match=f"HTTPS must be one of .*got '{value}'"):
        parse_bool(value, False, name="HTTPS")


def test_env_readers_type_one_value_with_defaults() -> None:
    env = {"FLAG": "yes", "COUNT": " 42 ", "HOSTS": " a.example, ,b.example ", "BLANK": " "}
    assert env_bool(env, "FLAG") is True
    assert env_bool(env, "BLANK", True) is True
    assert env_bool(env, "UNSET") is False
    assert env_int(env, "COUNT", 1) == 42
    assert env_int(env, "BLANK", 7) == 7
    assert env_list(env, "HOSTS", []) == ["a.example", "b.example"]
    assert env_list(env, "UNSET", ["x"]) == ["x"]
    with pytest.raises(ValueError, match="FLAG"):
        env_bool({"FLAG": "maybe"}, "FLAG")
