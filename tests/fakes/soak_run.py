"""One soak run: real web and worker processes on PostgreSQL and a Redis of the run's own, the
fakes, the customers, and the faults, each logged with its time. Then it waits until every
process has drained and stops them all, whatever happened (exceptions and Ctrl-C included).

    result = run_soak(SoakPlan(duration_s=300, customers=500), database_url)
    report = soak_checks.check(result)   # the invariants, from the rows and the fakes' logs

The caller has Django set up on the same database (it writes the runtime settings and the checks
read the rows). Every loop here is bounded in count and time.
"""

import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from conversations.models import Message, RuntimeSettings, Turn
from tests.fakes.processes import ManagedProcess, ProcessSet, process_env, tune_runtime
from tests.fakes.soak_media import SoakCloud
from tests.fakes.soak_services import OwnRedis, SoakCrm, SoakLLM
from tests.fakes.soak_traffic import (
    DEFAULT_MIX,
    FAULTS,
    DeliveryLog,
    Sender,
    parse_faults,
    plan_deliveries,
)


@dataclass
class SoakPlan:
    duration_s: float = 300.0  # the sending window; draining comes after
    customers: int = 500
    seed: int = 17
    faults: tuple[str, ...] = FAULTS
    kill_every_s: float = 30.0
    worker_down_s: float = 5.0
    crm_outage_s: float = 30.0  # 503s for this long, then slow for as long again
    llm_error_rate: float = 0.05
    llm_throttle_s: float = 5.0
    return_after_s: tuple[float, float] = (60.0, 150.0)
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    lock_ttl_s: int = 10
    drain_timeout_s: float = 180.0
    workers: int = 3
    webs: int = 2

    def __post_init__(self):
        parse_faults(",".join(self.faults))
        if self.duration_s < 20 or self.customers < 1:
            raise ValueError("a soak needs at least 20 s and 1 customer")


@dataclass
class Fault:
    name: str
    at: float  # time.time() when it was injected
    ended: float = 0.0  # when it was lifted (the process back, the CRM answering again)


@dataclass
class SoakResult:
    plan: SoakPlan
    started: float  # time.time()
    sent_until: float
    drained: bool
    faults: list[Fault]
    deliveries: DeliveryLog
    planned_wamids: set[str]
    cloud_texts: list  # tests.fakes.cloud_api.SentText, in the order the fake accepted them
    crm_calls: list
    llm_statuses: list[int]
    crm_cache_ttl_s: int
    down_at_end: list[str]  # workers and web processes not running once the faults stopped
    tracebacks: dict[str, int]  # process name -> "Traceback" lines in its log
    logs: dict[str, str]  # "name (pid N)" -> log file path
    media_requests: list = field(default_factory=list)  # soak_media.MediaRequest, in order
    llm_inputs: list[str] = field(default_factory=list)  # each LLM call's input, as JSON text

    def clean_logs(self) -> None:
        for path in self.logs.values():
            Path(path).unlink(missing_ok=True)


class SoakProcesses(ProcessSet):
    """Stops every process at the end like ProcessSet, without dumping a dozen logs: their paths
    go into the result, and the caller deletes them once the invariants hold (clean_logs)."""

    def __exit__(self, exc_type, *exc) -> None:
        self.stop_all()
        if exc_type is not None:
            for process in self.processes:
                sys.stderr.write(f"{process.name} (pid {process.pid}): {process.log_path}\n")

    def tracebacks(self) -> dict[str, int]:
        counts = {}
        for process in self.processes:
            found = process.output().count("Traceback")
            if found:
                counts[process.name] = counts.get(process.name, 0) + found
        return counts


class _Faults:
    """Injects the plan's faults from threads of its own and logs each with its time."""

    def __init__(self, plan, procs, spawner, env, redis_server, crm, llm, webs, workers, say):
        self.plan, self.procs, self.env, self.say = plan, procs, env, say
        # Processes are started from one thread that lives as long as they do: a child started
        # with PR_SET_PDEATHSIG dies when the *thread* that forked it ends.
        self.spawner = spawner
        self.redis, self.crm, self.llm = redis_server, crm, llm
        self.webs, self.workers = webs, workers
        self.log: list[Fault] = []
        self.stop = threading.Event()
        self.rng = random.Random(plan.seed)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _begin(self, name: str) -> Fault:
        fault = Fault(name, time.time())
        with self._lock:
            self.log.append(fault)
        self.say(f"fault {name} at +{fault.at - self.started:.1f} s")
        return fault

    def _spawn(self, start, name: str) -> ManagedProcess:
        return self.spawner.submit(start, self.env, name=name).result()

    def _at(self, offset_s: float) -> bool:
        """Wait until `offset_s` into the run; False if the run is stopping."""
        return not self.stop.wait(max(0.0, self.started + offset_s - time.time()))

    def _kill_workers(self) -> None:
        number = 0
        while self._at((number + 1) * self.plan.kill_every_s):
            number += 1
            index = self.rng.randrange(len(self.workers))
            fault = self._begin(f"kill -9 worker-{index + 1}")
            self.workers[index].kill()
            self.stop.wait(self.plan.worker_down_s)
            self.workers[index] = self._spawn(self.procs.runworker, f"worker-{index + 1}")
            fault.ended = time.time()

    def _restart_redis(self) -> None:
        if self._at(self.plan.duration_s * 0.42):
            fault = self._begin("redis restart (SHUTDOWN NOSAVE)")
            self.redis.restart()
            fault.ended = time.time()

    def _crm_outage(self) -> None:
        if self._at(self.plan.duration_s * 0.15):
            outage = self._begin(f"crm 503 for {self.plan.crm_outage_s:g} s")
            self.crm.mode = "down"
            self.stop.wait(self.plan.crm_outage_s)
            outage.ended = time.time()
            slow = self._begin(f"crm slow (timeouts) for {self.plan.crm_outage_s:g} s")
            self.crm.mode = "slow"
            self.stop.wait(self.plan.crm_outage_s)
            self.crm.mode = "ok"
            slow.ended = time.time()

    def _throttle_llm(self) -> None:
        if self._at(self.plan.duration_s * 0.62):
            fault = self._begin(f"llm 429 burst for {self.plan.llm_throttle_s:g} s")
            self.llm.throttle(self.plan.llm_throttle_s)
            self.stop.wait(self.plan.llm_throttle_s)
            fault.ended = time.time()

    def _restart_web(self) -> None:
        if self._at(self.plan.duration_s * 0.75):
            fault = self._begin("kill -9 web-1")
            self.webs[0].kill()
            self.stop.wait(3)
            self.webs[0] = self._spawn(self.procs.daphne, "web-1")
            fault.ended = time.time()

    def start(self, started: float) -> None:
        self.started = started
        jobs = {
            "worker_kills": self._kill_workers,
            "redis_restart": self._restart_redis,
            "crm_outage": self._crm_outage,
            "llm_429": self._throttle_llm,
            "web_restart": self._restart_web,
        }
        for name in self.plan.faults:
            thread = threading.Thread(target=jobs[name], name=f"soak-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def finish(self, timeout_s: float = 60.0) -> None:
        """Stop injecting; wait for a fault in progress to put its process back."""
        self.stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))


def _unsettled() -> int:
    inbound = Message.objects.filter(direction=Message.Direction.INBOUND)
    pending = inbound.filter(state__in=[Message.State.PENDING, Message.State.PROCESSING]).count()
    return pending + Turn.objects.filter(outcome=Turn.Outcome.RUNNING).count()


def _drain(expected: int, timeout_s: float, say) -> bool:
    """Wait until every expected message is stored and settled and no turn runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stored = Message.objects.filter(direction=Message.Direction.INBOUND).count()
        if stored >= expected and not _unsettled():
            time.sleep(2)  # let a late duplicate send show itself before counting
            return not _unsettled()
        time.sleep(0.5)
    say(f"not drained after {timeout_s:g} s: {_unsettled()} unsettled")
    return False


def run_soak(plan: SoakPlan, database_url: str, say=print) -> SoakResult:
    tune_runtime(
        lock_ttl_seconds=plan.lock_ttl_s,
        lock_wait_timeout_seconds=10,
        debounce_quiet_ms=200,  # 2 s and 8 s scaled 1:10
        debounce_max_wait_ms=800,
        crm_timeout_seconds=2,  # 12 s would be 1.2 s at 1:10; the admin's minimum is 1 s
        llm_timeout_seconds=15,
    )
    deliveries = plan_deliveries(
        plan.customers,
        plan.duration_s,
        seed=plan.seed,
        return_after_s=plan.return_after_s,
        mix=plan.mix,
    )
    say(f"soak: {plan.customers} customers, {len(deliveries)} deliveries in {plan.duration_s:g} s")
    with (
        OwnRedis() as redis_server,
        SoakCloud() as cloud,
        tempfile.TemporaryDirectory(prefix="soak-media-") as media_root,
        SoakCrm(seed=plan.seed) as crm,
        SoakLLM(error_rate=plan.llm_error_rate, seed=plan.seed) as llm,
        ThreadPoolExecutor(1, thread_name_prefix="soak-spawner") as spawner,
        SoakProcesses() as procs,
    ):
        env = process_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_server.url,
            LOG_LEVEL="WARNING",
            # PostgreSQL allows 100 connections for everyone on this machine.
            DATABASE_POOL_SIZE="6",
            WORKER_THREADS="12",
            MEDIA_ROOT=media_root,  # the voice notes the workers download
            **cloud.env(),
            **crm.env(),
            **llm.env(),
        )
        workers: list[ManagedProcess] = [
            procs.runworker(env, name=f"worker-{n + 1}") for n in range(plan.workers)
        ]
        webs: list[ManagedProcess] = [
            procs.daphne(env, name=f"web-{n + 1}") for n in range(plan.webs)
        ]
        faults = _Faults(plan, procs, spawner, env, redis_server, crm, llm, webs, workers, say)
        sender = Sender(lambda: [web.url for web in webs if web.alive()] or [webs[-1].url])
        started, started_mono = time.time(), time.monotonic()
        faults.start(started)
        try:
            log = sender.run(deliveries, started_mono, faults.stop)
            sent_until = time.time()
        finally:
            faults.finish()
        down = [p.name for p in [*workers, *webs] if not p.alive()]
        say(f"sent {log.accepted} deliveries ({log.retried} retried, {len(log.given_up)} lost)")
        planned = {delivery.wamid for delivery in deliveries}
        drained = _drain(len(planned) - len(log.given_up), plan.drain_timeout_s, say)
        return SoakResult(
            plan=plan,
            started=started,
            sent_until=sent_until,
            drained=drained,
            faults=faults.log,
            deliveries=log,
            planned_wamids=planned,
            cloud_texts=cloud.texts(),
            crm_calls=list(crm.calls),
            llm_statuses=list(llm.statuses),
            media_requests=list(cloud.media_requests),
            llm_inputs=list(llm.inputs),
            down_at_end=down,
            tracebacks=procs.tracebacks(),
            logs={f"{p.name} (pid {p.pid})": str(p.log_path) for p in procs.processes},
            crm_cache_ttl_s=RuntimeSettings.objects.get(pk=1).crm_cache_ttl_seconds,
        )
