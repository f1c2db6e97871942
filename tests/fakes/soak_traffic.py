"""The soak's customers: a plan of signed webhook deliveries, sent on time, round-robin over the
web processes, with Meta's redeliveries.

Each customer sends a burst of 1-5 messages (the first names its CPF, so the CRM is asked); some
come back minutes later with another burst. About 5% of deliveries are delivered again a moment
later to another web process, as Meta redelivers. A delivery that fails (a web process just
killed) is tried on the next one, a bounded number of times.

The message mix: each message's kind is drawn from `mix` ({kind: weight}); MESSAGE_KINDS says how
each kind is built: "text", "person" (asking for a person: the soak's LLM answers it with a
transfer_to_human call) and "voice" (a voice note, served by the soak's media fake and
transcribed by its transcription fake, tests/fakes/soak_media.py).
"""

import copy
import itertools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from tests.fakes.cloud_api import deliver
from tests.fakes.soak_media import VOICE_MIME_TYPE, media_id_of
from tests.fakes.whatsapp_payloads import media_message, notification, text_message

TEXTS = (
    "minha internet caiu",
    "está muito lenta desde ontem",
    "o roteiro está piscando vermelho",
    "quero saber da minha fatura",
    "já reiniciei o modem",
)


def _text(wa_id: str, wamid: str, number: int, cpf: str) -> dict:
    body = TEXTS[number % len(TEXTS)]
    if number == 0:
        body = f"oi, meu cpf é {cpf}, {body}"
    return text_message(wa_id, body, wamid=wamid)


PERSON_TEXT = "quero falar com um atendente"


def _person(wa_id: str, wamid: str, number: int, cpf: str) -> dict:
    body = f"oi, meu cpf é {cpf}, {PERSON_TEXT}" if number == 0 else PERSON_TEXT
    return text_message(wa_id, body, wamid=wamid)


def _voice(wa_id: str, wamid: str, number: int, cpf: str) -> dict:
    media_id = media_id_of(wamid)
    return media_message(wa_id, "audio", wamid=wamid, media_id=media_id, mime_type=VOICE_MIME_TYPE)


FAULTS = ("worker_kills", "redis_restart", "crm_outage", "llm_429", "web_restart")


def parse_faults(spec: str) -> tuple[str, ...]:
    """ "worker_kills,redis_restart" -> a tuple; ValueError naming an unknown fault."""
    faults = tuple(filter(None, (name.strip() for name in spec.split(","))))
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown faults {unknown} (known: {', '.join(FAULTS)})")
    return faults


# kind -> builder(wa_id, wamid, number of the message in the customer's story, cpf)
MESSAGE_KINDS: dict[str, Callable[[str, str, int, str], dict]] = {
    "text": _text,
    "person": _person,
    "voice": _voice,
}
# Per message: about 1 customer in 8 asks for a person, 1 in 4 sends a voice note.
DEFAULT_MIX = {"text": 85.0, "person": 5.0, "voice": 10.0}


def parse_mix(spec: str) -> dict[str, float]:
    """ "text:90,person:10" -> {"text": 90.0, "person": 10.0}; ValueError on a bad spec."""
    mix = {}
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        kind, _, weight = part.partition(":")
        if kind not in MESSAGE_KINDS:
            known = ", ".join(sorted(MESSAGE_KINDS))
            raise ValueError(f"unknown message kind {kind!r} (known: {known})")
        try:
            mix[kind] = float(weight or 1)
        except ValueError:
            raise ValueError(f"weight of {kind!r} is not a number: {weight!r}") from None
        if mix[kind] < 0:
            raise ValueError(f"weight of {kind!r} is negative")
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("the message mix needs at least one kind with a positive weight")
    return mix


def cpf_of(number: int) -> str:
    """A valid CPF (check digits right) made from `number`."""
    base = [int(digit) for digit in f"{number % 10**9:09d}"]
    if len(set(base)) == 1:  # 111.111.111-xx and the like are refused as documents
        base[0] = (base[0] + 1) % 10
    for length in (9, 10):
        total = sum(
            digit * weight for digit, weight in zip(base, range(length + 1, 1, -1), strict=True)
        )
        base.append(0 if total % 11 < 2 else 11 - total % 11)
    return "".join(map(str, base))


@dataclass(frozen=True)
class Delivery:
    at_s: float  # seconds from the start of the run
    wamid: str
    payload: dict


def plan_deliveries(
    customers: int,
    send_window_s: float,
    *,
    seed: int = 17,
    returning: float = 0.3,
    return_after_s: tuple[float, float] = (60.0, 150.0),
    duplicates: float = 0.05,
    mix: dict[str, float] | None = None,
) -> list[Delivery]:
    """Every delivery of the run, in time order (duplicates included), all within the window."""
    rng = random.Random(seed)
    mix = mix or DEFAULT_MIX
    # Several numbers share a document (a family, a company's CNPJ), so turns of different
    # conversations miss the same customer at once: single flight across processes is tested.
    documents = [cpf_of(rng.randrange(10**9)) for _ in range(max(1, customers // 3))]
    kinds, weights = list(mix), list(mix.values())
    deliveries = []
    for customer in range(customers):
        wa_id = f"55119{7000000 + customer:08d}"
        cpf = rng.choice(documents)
        starts = [rng.uniform(0, send_window_s * 0.8)]
        if rng.random() < returning:
            later = starts[0] + rng.uniform(*return_after_s)
            if later < send_window_s:
                starts.append(later)
        number = 0
        for burst, start in enumerate(starts):
            at = start
            for _ in range(rng.randint(1, 5)):
                wamid = f"wamid.soak-{customer}-{burst}-{number}"
                builder = MESSAGE_KINDS[rng.choices(kinds, weights)[0]]
                payload = notification([builder(wa_id, wamid, number, cpf)])
                deliveries.append(Delivery(at, wamid, payload))
                if rng.random() < duplicates:
                    deliveries.append(Delivery(at + rng.uniform(0.05, 3.0), wamid, payload))
                number += 1
                at += rng.uniform(0.05, 0.6)
    return sorted(deliveries, key=lambda delivery: delivery.at_s)


def _stamped(payload: dict) -> dict:
    """The payload with its messages' timestamps set to now, as Meta stamps them when sent."""
    payload = copy.deepcopy(payload)
    for entry in payload["entry"]:
        for change in entry["changes"]:
            for message in change["value"].get("messages", []):
                message["timestamp"] = str(int(time.time()))
    return payload


@dataclass
class DeliveryLog:
    accepted: int = 0
    retried: int = 0
    given_up: list[str] = field(default_factory=list)  # wamids no web process took
    lateness_s: list[float] = field(default_factory=list)


class Sender:
    """Sends a plan on time over the web processes' current URLs (`urls()` is read per try)."""

    def __init__(self, urls: Callable[[], list[str]], threads: int = 24, attempts: int = 8):
        self.urls = urls
        self.attempts = attempts
        self.log = DeliveryLog()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="soak-send")

    def _send(self, delivery: Delivery) -> None:
        payload = _stamped(delivery.payload)
        for attempt in range(self.attempts):
            urls = self.urls()
            url = urls[next(self._turn) % len(urls)]
            try:
                if deliver(url, payload).status_code == 200:
                    with self._lock:
                        self.log.accepted += 1
                        self.log.retried += attempt > 0
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25 * (attempt + 1))
        with self._lock:
            self.log.given_up.append(delivery.wamid)

    def run(self, plan: list[Delivery], started: float, stop: threading.Event) -> DeliveryLog:
        """Send each delivery at its time (bounded by the plan); returns once all are done."""
        for delivery in plan:
            if stop.wait(max(0.0, started + delivery.at_s - time.monotonic())):
                break
            self.log.lateness_s.append(time.monotonic() - started - delivery.at_s)
            self._pool.submit(self._send, delivery)
        self._pool.shutdown(wait=True)
        return self.log
