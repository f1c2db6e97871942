"""A local stand-in for the OpenAI Responses API, so tests run the real `openai` SDK over the wire.

    with FakeResponsesAPI(reply="Olá!") as api:
        settings.OPENAI_API_KEY = "test-key"
        settings.OPENAI_BASE_URL = api.url     # ends in /v1, like the real one
        ...
        api.calls          # the JSON body of every POST /v1/responses, in order
        api.calls[0]["input"], api.calls[0]["instructions"], api.calls[0]["store"]

Knobs (all may be changed while running):
- reply: the text answered, or a function(body) -> text (e.g. to echo the last input).
- delay_s: seconds to wait before answering each call (a slow model).
- fail_times / fail_status: answer the first N calls with that HTTP status (500 = retried by the
  SDK), with a retry-after-ms header of retry_after_ms so retries are quick in tests.
- hold=True: every call waits until release() (a model call that lasts exactly as long as the test
  wants); wait_for_calls(n) waits until n calls have arrived.
- script: answers used first, one per call, before `reply`: a string (a text answer) or a list of
  output items built with function_call(name, **arguments) and reasoning() (a model that calls
  tools, several at once if the list holds several calls).
- usage: the token usage every answer reports, or a function(body) -> usage.
- no_encrypted_reasoning: models that answer 400 (param "include") to
  include=["reasoning.encrypted_content"], as OpenAI's models without reasoning do.
- reply may also return a list of output items (function calls): a model that decides per request.
"""

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.http import FakeHTTPServer, Reply, Request


def function_call(name: str, arguments: str | None = None, **values) -> dict[str, Any]:
    """A function_call output item; `arguments` as raw text (to send bad JSON) or as keywords."""
    return {
        "type": "function_call",
        "name": name,
        "arguments": arguments if arguments is not None else json.dumps(values),
        "status": "completed",
    }


def reasoning() -> dict[str, Any]:
    """A reasoning item as a reasoning model returns it with include=[reasoning.encrypted_content]."""
    return {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-fake-encrypted"}


USAGE = {"input_tokens": 10, "cached_tokens": 0, "output_tokens": 5}


def response_object(
    text: str, model: str, number: int = 1, items: list | None = None, usage: dict | None = None
) -> dict[str, Any]:
    """A minimal valid Responses API `response` whose output_text is `text` (empty: no output),
    after the output `items` (function calls, reasoning), numbered per response."""
    usage = usage or USAGE
    output = []
    for index, item in enumerate(items or []):
        prefix = {"function_call": "fc", "reasoning": "rs"}.get(item["type"], "it")
        numbered = {"id": f"{prefix}_fake{number}_{index}", **item}
        if item["type"] == "function_call":
            numbered["call_id"] = f"call_{number}_{index}"
        output.append(numbered)
    if text:
        output.append(
            {
                "id": f"msg_fake{number}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    return {
        "id": f"resp_fake{number}",
        "object": "response",
        "created_at": 1767225600,
        "status": "completed",
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "usage": {
            "input_tokens": usage["input_tokens"],
            "input_tokens_details": {"cached_tokens": usage["cached_tokens"]},
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        },
    }


class FakeResponsesAPI:
    def __init__(
        self,
        reply: str | Callable[[dict], str] = "Olá! Como posso ajudar?",
        *,
        delay_s: float = 0.0,
        fail_times: int = 0,
        fail_status: int = 500,
        retry_after_ms: int | None = 10,
        hold: bool = False,
        script: list | None = None,
        usage: dict | None = None,
    ):
        self.reply = reply
        self.script: list[str | list] = list(script or [])
        self.usage = usage or USAGE
        self.no_encrypted_reasoning: set[str] = set()
        self.delay_s = delay_s
        self.fail_times = fail_times
        self.fail_status = fail_status
        self.retry_after_ms = retry_after_ms
        self.calls: list[dict] = []  # bodies of POST .../responses, failed attempts included
        self._calls_changed = threading.Condition()
        self._released = threading.Event()
        if not hold:
            self._released.set()
        self._stopping = threading.Event()
        self._server = FakeHTTPServer(self._handle)

    @property
    def url(self) -> str:
        """The base URL to give the SDK (OPENAI_BASE_URL)."""
        return f"{self._server.url}/v1"

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    def release(self) -> None:
        """Let held calls (hold=True) answer, and every later one too."""
        self._released.set()

    def hold(self) -> None:
        self._released.clear()

    def wait_for_calls(self, count: int, timeout_s: float = 5.0) -> bool:
        with self._calls_changed:
            return self._calls_changed.wait_for(lambda: len(self.calls) >= count, timeout_s)

    def _handle(self, request: Request) -> Reply:
        if request.method != "POST" or not request.path.rstrip("/").endswith("/responses"):
            return Reply(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        body = request.json()
        if body.get("include") and body.get("model") in self.no_encrypted_reasoning:
            with self._calls_changed:
                self.calls.append(body)
                self._calls_changed.notify_all()
            error = {
                "message": "Encrypted content is not supported with this model.",
                "type": "invalid_request_error",
                "param": "include",
                "code": None,
            }
            return Reply(400, {"error": error})
        with self._calls_changed:
            self.calls.append(body)
            number = len(self.calls)
            failing = self.fail_times > 0
            if failing:
                self.fail_times -= 1
            step = self.script.pop(0) if self.script and not failing else None
            self._calls_changed.notify_all()
        if failing:
            headers = {}
            if self.retry_after_ms is not None:
                headers["retry-after-ms"] = str(self.retry_after_ms)
            error = {"message": "fake failure", "type": "server_error", "code": None}
            return Reply(self.fail_status, {"error": error}, headers)
        self._released.wait()
        deadline = time.monotonic() + self.delay_s
        while (left := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            self._stopping.wait(left)
        if self._stopping.is_set():
            raise ConnectionAbortedError  # shutting down: drop the connection quietly
        model = body.get("model", "")
        if isinstance(step, list):
            return Reply(200, response_object("", model, number, step, self._usage(body)))
        if isinstance(step, str):
            return Reply(200, response_object(step, model, number, usage=self._usage(body)))
        usage = self._usage(body)
        text = self.reply(body) if callable(self.reply) else self.reply
        if isinstance(text, list):
            return Reply(200, response_object("", model, number, text, usage))
        return Reply(200, response_object(text, model, number, usage=usage))

    def _usage(self, body: dict) -> dict:
        return self.usage(body) if callable(self.usage) else self.usage

    def start(self) -> "FakeResponsesAPI":
        self._server.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        self._server.stop()

    def __enter__(self) -> "FakeResponsesAPI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
