import pytest
from django.core.exceptions import ImproperlyConfigured

from supportbot.env import env_bool, env_int, env_list, env_str, env_url


def test_it_reads_booleans_in_plain_words(monkeypatch):
    for word, expected in [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]:
        monkeypatch.setenv("FLAG", word)
        assert env_bool("FLAG") is expected


def test_it_uses_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("FLAG", raising=False)
    assert env_bool("FLAG", True) is True
    assert env_int("FLAG", 7) == 7
    assert env_str("FLAG", "x") == "x"
    assert env_list("FLAG", ["a"]) == ["a"]
    assert env_url("FLAG", ("http",)) == ""


def test_it_names_the_variable_of_a_nonsense_boolean(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG")


@pytest.mark.parametrize("raw", ["ten", "1.5", "-3", "100001"])
def test_it_names_the_variable_of_a_bad_number(monkeypatch, raw):
    monkeypatch.setenv("COUNT", raw)
    with pytest.raises(ImproperlyConfigured, match="COUNT"):
        env_int("COUNT", 1, minimum=0, maximum=100000)


def test_it_splits_lists_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example , ,b.example")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_it_strips_trailing_slashes_from_urls(monkeypatch):
    monkeypatch.setenv("BASE", "https://crm.example/api/")
    assert env_url("BASE", ("http", "https")) == "https://crm.example/api"


@pytest.mark.parametrize("raw", ["crm.example", "ftp://crm.example", "https://", "http:///path"])
def test_it_names_the_variable_of_a_bad_url(monkeypatch, raw):
    monkeypatch.setenv("BASE", raw)
    with pytest.raises(ImproperlyConfigured, match="BASE"):
        env_url("BASE", ("http", "https"))
