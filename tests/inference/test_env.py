"""`inference.env.parse_bool`: the one boolean reading of the server's and the web's settings."""

from __future__ import annotations

import pytest

from inference.env import parse_bool


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On"])
def test_true_words(value):
    assert parse_bool(value, False) is True


@pytest.mark.parametrize("value", ["0", "false", "False", " no", "OFF"])
def test_false_words(value):
    assert parse_bool(value, True) is False


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_or_blank_is_the_default(value):
    assert parse_bool(value, True) is True
    assert parse_bool(value, False) is False


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_anything_else_is_an_error_naming_the_variable(value):
    with pytest.raises(ValueError, match="DEBUG"):
        parse_bool(value, False, name="DEBUG")
