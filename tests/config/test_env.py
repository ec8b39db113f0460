"""config.env: where settings come from and how chat-ui's `.env` files are read."""

from __future__ import annotations

from pathlib import Path

from config.env import load_env, parse_env_text


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
