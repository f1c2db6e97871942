"""Production hardening: the deploy check under a production environment, cookie flags, HSTS,
the proxy header and trusted origins, a configurable admin path, idle sessions, and admin login
throttling (django-axes) that never logs the password."""

import importlib
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.urls import clear_url_caches

from tests.supportbot.test_settings import ALL_VARIABLES, load_settings

ROOT = Path(__file__).resolve().parents[2]
HARDENING_VARIABLES = [
    "ADMIN_URL",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SESSION_IDLE_MINUTES",
    "DJANGO_HSTS_SECONDS",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_HSTS_PRELOAD",
    "DJANGO_SSL_REDIRECT",
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "ADMIN_LOGIN_FAILURE_LIMIT",
    "ADMIN_LOCKOUT_MINUTES",
]
PASSWORD = "senha-correta-Xq7"
WRONG_PASSWORD = "tentativa-errada-Zk9"


def production_env(**overrides) -> dict[str, str]:
    """What README says a deployment sets (the services need not be reachable for a check)."""
    env = {k: v for k, v in os.environ.items() if k not in ALL_VARIABLES + HARDENING_VARIABLES}
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="bot.example",
        DATABASE_URL="postgresql://supportbot@db.internal:5432/supportbot",
        REDIS_URL="redis://cache.internal:6379/0",
        WHATSAPP_APP_SECRET="app-secret",
        WHATSAPP_VERIFY_TOKEN="verify-token",
        DJANGO_SSL_REDIRECT="proxy",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://bot.example",
    )
    env.update(overrides)
    return env


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_it_passes_the_deploy_check_with_a_production_environment():
    result = deploy_check(production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        ({"DJANGO_SSL_REDIRECT": "false"}, "security.W008"),
        ({"DJANGO_HSTS_SECONDS": "0"}, "security.W004"),
        ({"DJANGO_SECURE_COOKIES": "false"}, "security.W012"),
    ],
)
def test_it_warns_when_a_deployment_turns_a_protection_off(override, warning):
    result = deploy_check(production_env(**override))
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_it_sets_secure_cookies_and_hsts_outside_debug(monkeypatch):
    loaded = load_settings(monkeypatch)
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["SESSION_COOKIE_HTTPONLY"] is True
    assert loaded["SECURE_HSTS_SECONDS"] == 31536000
    assert loaded["SECURE_SSL_REDIRECT"] is False


def test_it_keeps_cookies_plain_for_local_debug(monkeypatch):
    loaded = load_settings(monkeypatch, DJANGO_DEBUG="true")
    assert loaded["SESSION_COOKIE_SECURE"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 0


def test_it_reads_the_proxy_header_origins_redirect_and_admin_path(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://bot.example, https://admin.example:8443",
        DJANGO_SSL_REDIRECT="true",
        ADMIN_URL="/equipe-7f3a/",
        DJANGO_SESSION_IDLE_MINUTES="10",
        ADMIN_LOGIN_FAILURE_LIMIT="3",
    )
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert loaded["CSRF_TRUSTED_ORIGINS"] == ["https://bot.example", "https://admin.example:8443"]
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["ADMIN_URL"] == "equipe-7f3a/"
    assert loaded["SESSION_COOKIE_AGE"] == 600
    assert loaded["SESSION_SAVE_EVERY_REQUEST"] is True
    assert loaded["AXES_FAILURE_LIMIT"] == 3


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X Forwarded: https"),
        ("DJANGO_CSRF_TRUSTED_ORIGINS", "bot.example"),
        ("DJANGO_CSRF_TRUSTED_ORIGINS", "https://bot.example/admin/"),
        ("DJANGO_SSL_REDIRECT", "maybe"),
        ("ADMIN_URL", "../etc"),
        ("ADMIN_URL", "admin page/"),
        ("DJANGO_HSTS_SECONDS", "-1"),
        ("DJANGO_SESSION_IDLE_MINUTES", "0"),
        ("ADMIN_LOGIN_FAILURE_LIMIT", "0"),
        ("ADMIN_LOCKOUT_MINUTES", "soon"),
    ],
)
def test_it_refuses_nonsense_hardening_values_naming_the_variable(monkeypatch, variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        load_settings(monkeypatch, **{variable: value})


@pytest.fixture
def admin_at(settings):
    """Serve the admin at another path (the URL configuration is read again, then restored)."""
    import supportbot.urls

    def move(path: str) -> None:
        settings.ADMIN_URL = path
        importlib.reload(supportbot.urls)
        clear_url_caches()

    yield move
    settings.ADMIN_URL = "admin/"
    importlib.reload(supportbot.urls)
    clear_url_caches()


def test_it_serves_the_admin_only_at_the_configured_path(client, admin_at, db):
    admin_at("equipe-7f3a/")
    assert client.get("/equipe-7f3a/login/").status_code == 200
    assert client.get("/admin/login/").status_code == 404


@pytest.fixture
def staff_member(db):
    return User.objects.create_user("ana", password=PASSWORD, is_staff=True)


def log_in(client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post(
        "/admin/login/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def test_it_locks_a_user_out_after_the_failure_limit_even_with_the_right_password(
    client, staff_member, settings, caplog
):
    settings.AXES_FAILURE_LIMIT = 3
    caplog.set_level(logging.INFO)
    for _ in range(2):
        assert log_in(client, "ana", WRONG_PASSWORD).status_code == 200  # the form again
    assert log_in(client, "ana", WRONG_PASSWORD).status_code == 429
    assert log_in(client, "ana", PASSWORD).status_code == 429
    # Another IP address does not help: the user name is locked.
    assert log_in(client, "ana", PASSWORD, ip="198.51.100.9").status_code == 429
    assert "_auth_user_id" not in client.session
    assert "locking out" in caplog.text.lower()
    assert WRONG_PASSWORD not in caplog.text and PASSWORD not in caplog.text


def test_it_locks_an_ip_address_out_whatever_user_names_it_tries(client, staff_member, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for name in ("joao", "maria", "pedro"):
        log_in(client, name, WRONG_PASSWORD)
    assert log_in(client, "ana", PASSWORD).status_code == 429
    assert log_in(client, "ana", PASSWORD, ip="198.51.100.9").status_code == 302  # logged in


def test_it_stores_attempts_without_the_password(client, staff_member):
    from axes.models import AccessAttempt

    log_in(client, "ana", WRONG_PASSWORD)
    (attempt,) = AccessAttempt.objects.all()
    assert attempt.username == "ana"
    assert WRONG_PASSWORD not in attempt.post_data


def test_it_lets_the_right_password_in_below_the_limit(client, staff_member):
    log_in(client, "ana", WRONG_PASSWORD)
    assert log_in(client, "ana", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(staff_member.pk)


def test_it_still_checks_passwords_outside_a_request(db):
    from django.contrib.auth import authenticate

    assert authenticate(username="nobody", password="x") is None


def test_it_sends_secure_http_only_cookies_and_an_idle_expiry(client, staff_member, settings):
    page = client.get("/admin/login/")
    assert page.cookies["csrftoken"]["secure"] is True
    response = log_in(client, "ana", PASSWORD)
    session_cookie = response.cookies["sessionid"]
    assert session_cookie["secure"] is True and session_cookie["httponly"] is True
    assert session_cookie["max-age"] == settings.SESSION_COOKIE_AGE == 30 * 60
    # Every request moves the expiry on: inactivity, not the login time, ends the session.
    again = client.get("/admin/")
    assert again.cookies["sessionid"]["max-age"] == 30 * 60
