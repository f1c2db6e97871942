"""Soak: real processes under load and injected faults, then the invariants. Prints figures and
exits 1 if an invariant failed (RELIABILITY.md has the figures of the last full run).

    .venv/bin/python bench/soak.py                                  # 5 min, 500 customers
    .venv/bin/python bench/soak.py --duration 60 --customers 60 --faults worker_kills,redis_restart
    .venv/bin/python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/soak

What runs, all on loopback: 2 `daphne` and 3 `runworker supportbot-inbound` processes on a
PostgreSQL database made for this run (dropped at the end unless --keep-database) and a
redis-server of its own on a free port (never the machine's shared Redis: the soak restarts it);
fakes of the Cloud API, the CRM (0.8-1 s) and the Responses API (1.5-2 s, 5% 500s), i.e. the
latencies of the systems we replace scaled 1:10. Customers, faults and checks:
tests/fakes/soak_traffic.py, soak_run.py and soak_checks.py (tests/e2e/test_soak.py runs a
60-second version with the same checks).
"""

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _admin_connection(database_url: str):
    import psycopg

    parsed = urlparse(database_url)
    return psycopg.connect(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname="postgres",
        autocommit=True,
    )


def _arguments(argv=None) -> argparse.Namespace:
    from tests.fakes.soak_traffic import DEFAULT_MIX, FAULTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="sending window, seconds")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {FAULTS}")
    mix = ",".join(f"{kind}:{weight:g}" for kind, weight in DEFAULT_MIX.items())
    parser.add_argument("--mix", default=mix, help=f"message kinds and weights (default {mix})")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/soak"),
        help="server and base name; the run uses a database <name>_soak_<pid> of its own",
    )
    parser.add_argument("--keep-database", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _arguments(argv)
    from tests.fakes.soak_traffic import parse_faults, parse_mix

    try:  # bad input changes nothing: checked before the database is made
        plan = dict(
            duration_s=args.duration,
            customers=args.customers,
            seed=args.seed,
            faults=parse_faults(args.faults),
            mix=parse_mix(args.mix),
            # A short run brings its returning customers back sooner.
            return_after_s=(min(60.0, args.duration / 4), min(150.0, args.duration / 2)),
            crm_outage_s=min(30.0, args.duration / 10),
        )
        if args.duration < 20 or args.customers < 1:
            raise ValueError("a soak needs --duration of at least 20 s and 1 customer")
    except ValueError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    base = urlparse(args.database_url)
    name = f"{base.path.lstrip('/') or 'supportbot'}_soak_{os.getpid()}"
    database_url = base._replace(path=f"/{name}").geturl()
    with _admin_connection(args.database_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return _run(plan, database_url)
    finally:
        if not args.keep_database:
            with _admin_connection(args.database_url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(plan: dict, database_url: str) -> int:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="supportbot.settings",
        DJANGO_SECRET_KEY="soak-only",
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)  # this process only writes settings and reads rows
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from tests.fakes import soak_checks
    from tests.fakes.soak_run import SoakPlan, run_soak

    started = time.monotonic()
    result = run_soak(SoakPlan(**plan), database_url, say=lambda line: print(line, flush=True))
    report = soak_checks.check(result)
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    print(report.text())
    if report.ok:
        result.clean_logs()
    else:
        print(
            "process logs:", *(f"  {name}: {path}" for name, path in result.logs.items()), sep="\n"
        )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
