from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm_gateway.outages import open_outage

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("resolve_outage", *args, stdout=out)
    return out.getvalue()


def test_it_resolves_an_outage():
    outage = open_outage(regions=["Centro"], message="x", title="Fibra")
    assert f"Resolved outage {outage.pk} (Fibra)" in run(str(outage.pk))
    outage.refresh_from_db()
    assert outage.resolved_at is not None


def test_it_says_so_when_the_outage_was_already_resolved():
    outage = open_outage(regions=["Centro"], message="x")
    run(str(outage.pk))
    outage.refresh_from_db()
    resolved_at = outage.resolved_at
    assert "already resolved" in run(str(outage.pk))
    outage.refresh_from_db()
    assert outage.resolved_at == resolved_at


def test_it_refuses_an_unknown_id():
    with pytest.raises(CommandError, match="No outage with id 42"):
        run("42")


@pytest.mark.parametrize("args", [[], ["abc"], ["1.5"]])
def test_it_refuses_a_missing_or_non_numeric_id(args):
    outage = open_outage(regions=["Centro"], message="x")
    with pytest.raises(CommandError):
        run(*args)
    outage.refresh_from_db()
    assert outage.resolved_at is None
