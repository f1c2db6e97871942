from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm_gateway.models import Outage

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("open_outage", *args, stdout=out)
    return out.getvalue()


def test_it_opens_an_outage():
    output = run(
        "--regions",
        "Centro, Zona Norte",
        "--message",
        "Rompimento de fibra.",
        "--title",
        "Fibra",
        "--expected-end",
        "2099-01-01T10:00-03:00",
    )
    outage = Outage.objects.get()
    assert f"Opened outage {outage.pk}" in output and "Centro, Zona Norte" in output
    assert outage.regions == ["Centro", "Zona Norte"]
    assert outage.message == "Rompimento de fibra." and outage.title == "Fibra"
    assert outage.expected_end_at.year == 2099


def test_it_defaults_the_title_and_expected_end():
    run("--regions", "Centro", "--message", "x")
    outage = Outage.objects.get()
    assert outage.title == "Falha massiva: Centro" and outage.expected_end_at is None


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--regions", " , ", "--message", "x"], "region"),
        (["--regions", "Centro", "--message", "  "], "message"),
        (["--regions", "Centro", "--message", "x", "--expected-end", "amanhã"], "ISO"),
        (["--regions", "Centro", "--message", "x", "--expected-end", "2001-01-01"], "future"),
        (["--regions", "Centro", "--message", "x", "--title", "t" * 201], "title"),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(args, error):
    with pytest.raises(CommandError, match=error):
        run(*args)
    assert not Outage.objects.exists()


@pytest.mark.parametrize("args", [["--regions", "Centro"], ["--message", "x"]])
def test_it_requires_regions_and_message(args):
    with pytest.raises(CommandError):
        run(*args)
    assert not Outage.objects.exists()
