"""Static files without a proxy: with DEBUG off, the ASGI application serves collectstatic's
output (WhiteNoise) under hashed names with far-future caching, in one process."""

import re
import sys

import pytest
import requests
from django.core.management import call_command
from django.test import AsyncClient

from tests.fakes.processes import ProcessSet, process_env, sqlite_copy

FAR_FUTURE = "max-age=315360000"


@pytest.fixture
def collected(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", "--no-input", verbosity=0)
    return settings.STATIC_ROOT


@pytest.mark.django_db
async def test_the_admin_links_hashed_names_that_are_served_with_far_future_caching(collected):
    client = AsyncClient()
    page = (await client.get("/admin/login/")).content.decode()
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert css, "the login page links an unhashed stylesheet"
    response = await client.get(css.group(1))
    assert response.status_code == 200
    assert FAR_FUTURE in response["Cache-Control"]
    assert "immutable" in response["Cache-Control"]


@pytest.mark.django_db
async def test_an_unknown_static_file_is_a_404(collected):
    assert (await AsyncClient().get("/static/admin/css/nothing.css")).status_code == 404


@pytest.mark.e2e
def test_serve_serves_them_with_debug_off(tmp_path, migrated_sqlite_file):
    static_root = tmp_path / "static"
    env = process_env(
        DATABASE_URL=sqlite_copy(migrated_sqlite_file, tmp_path),
        DJANGO_STATIC_ROOT=str(static_root),
        DJANGO_DEBUG="false",
    )
    with ProcessSet() as procs:
        step = procs.start(
            "collectstatic", [sys.executable, "manage.py", "collectstatic", "--no-input"], env
        )
        assert step.popen.wait(120) == 0, step.tail()
        web = procs.serve(env)
        page = requests.get(f"{web.url}/admin/login/", timeout=10).text
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page).group(1)
        response = requests.get(f"{web.url}{css}", timeout=10)
        assert response.status_code == 200
        assert FAR_FUTURE in response.headers["Cache-Control"]


@pytest.mark.e2e
def test_serve_serves_them_uncollected_while_debugging_as_make_run_does(
    tmp_path, migrated_sqlite_file
):
    env = process_env(
        DATABASE_URL=sqlite_copy(migrated_sqlite_file, tmp_path),
        DJANGO_STATIC_ROOT=str(tmp_path / "never-collected"),
        DJANGO_DEBUG="true",
    )
    with ProcessSet() as procs:
        web = procs.serve(env)
        assert requests.get(f"{web.url}/static/admin/css/base.css", timeout=10).status_code == 200
