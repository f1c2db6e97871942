"""Benchmark (a): the seed's timeline, our engine side by side with the old system. Prints figures.

    .venv/bin/python bench/engine_timeline.py                      # embedded
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench_engine \\
    REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/python bench/engine_timeline.py

Each customer writes every 12 s while one turn takes ~25 s (CRM 8-10 s, cached after the first
lookup as both systems do; LLM 15-20 s), scaled 1:100. The baseline is the system we replace:
one locked turn per message, waiting for the lock with the seed's backoff (100 ms doubling to a
2 s cap) for up to 30 s, lock TTL 120 s; on timeout it replies "Desculpe, estou processando sua
mensagem anterior". Both run in this process through the same sender and database.

    .venv/bin/python bench/engine_timeline.py --tools

runs the same timeline through the real assistant and its tools (bench/engine_tools.py), tools
off and on side by side: LLM calls and tokens per turn.
"""

import argparse
import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor

import engine_common as bench

SCALE = 100
MESSAGE_GAP_S = 12 / SCALE
ERROR_TEXT = "Desculpe, estou processando sua mensagem anterior"
TEXTS = ["529.982.247-25", "130", "ainda sem internet", "a luz está vermelha", "já reiniciei", "?"]
# A conversation in which no message needs a tool (bench/engine_tools.py's model calls none).
NO_TOOL_TEXTS = ["oi", "130", "tudo bem?", "obrigado", "até mais", "?"]


async def customer(
    conversation_id: int, on_message, messages: int, offset_s: float, texts=TEXTS
) -> None:
    from conversations.threads import in_thread

    await asyncio.sleep(offset_s)
    for n in range(messages):
        message = await in_thread(bench.store)(conversation_id, texts[n % len(texts)])
        await on_message(conversation_id, message)
        await asyncio.sleep(MESSAGE_GAP_S)


async def run_engine(ids: list[int], messages: int, offsets: list[float]):
    from conversations import events

    llm, crm = bench.FakeLlm(), bench.FakeCrm(cached=True)
    bench.patch_engine(llm, crm)

    async def webhook(conversation_id, message):
        await events.asend_wake(conversation_id)

    async with bench.InProcessWorker():
        await asyncio.gather(
            *[customer(c, webhook, messages, o) for c, o in zip(ids, offsets, strict=True)]
        )
        await wait_settled(ids)
    return llm.calls


async def run_baseline(ids: list[int], messages: int, offsets: list[float]):
    """The old system: a task per message, each waiting for the conversation lock."""
    from conversations.engine.locks import ConversationLock
    from conversations.models import Conversation, Message
    from conversations.threads import in_thread
    from conversations.whatsapp.sender import send_text

    llm, crm = bench.FakeLlm(), bench.FakeCrm(cached=True)
    # Every waiting message blocks a thread in the seed's polling loop.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(512))
    tasks = []

    def load(conversation_id: int) -> Conversation:
        return Conversation.objects.select_related("customer").get(pk=conversation_id)

    def finish(message_id: int, state: str) -> None:
        Message.objects.filter(pk=message_id).update(state=state)

    async def handle(conversation_id: int, message) -> None:
        lock = ConversationLock(conversation_id, ttl_s=120 / SCALE)
        got = await in_thread(lock.acquire)(
            wait_timeout_s=30 / SCALE, base_ms=100 // SCALE, cap_ms=2000 // SCALE
        )
        conversation = await in_thread(load)(conversation_id)
        if not got:
            await in_thread(send_text)(conversation, ERROR_TEXT, kind="fallback")
            await in_thread(finish)(message.pk, Message.State.FAILED)
            return
        try:
            await in_thread(crm)(conversation_id, [message.text])
            reply = await llm(None)
            await in_thread(send_text)(conversation, reply, kind="reply")
            await in_thread(finish)(message.pk, Message.State.ANSWERED)
        finally:
            await in_thread(lock.release)()

    async def webhook(conversation_id, message):
        tasks.append(asyncio.create_task(handle(conversation_id, message)))

    await asyncio.gather(
        *[customer(c, webhook, messages, o) for c, o in zip(ids, offsets, strict=True)]
    )
    await asyncio.gather(*tasks)
    return llm.calls


async def wait_settled(ids: list[int], timeout_s: float = 120) -> None:
    from conversations.models import Message
    from conversations.threads import in_thread

    def settled() -> bool:
        return not Message.objects.filter(
            conversation_id__in=ids,
            direction=Message.Direction.INBOUND,
            state__in=[Message.State.PENDING, Message.State.PROCESSING],
        ).exists()

    deadline = time.monotonic() + timeout_s
    while not await in_thread(settled)():
        if time.monotonic() > deadline:
            raise SystemExit("messages still pending after the timeout")
        await asyncio.sleep(0.02)


def figures(ids: list[int], llm_calls: int) -> dict:
    from conversations.models import Message

    rows = list(Message.objects.filter(conversation_id__in=ids).order_by("created_at", "id"))
    by_conversation: dict[int, list] = {c: [] for c in ids}
    for row in rows:
        by_conversation[row.conversation_id].append(row)
    errors = replies = stale = 0
    to_last_reply = []
    for items in by_conversation.values():
        inbound = [m for m in items if m.direction == Message.Direction.INBOUND]
        outbound = [m for m in items if m.direction == Message.Direction.OUTBOUND]
        errors += sum(1 for m in outbound if m.text == ERROR_TEXT or m.kind == "fallback")
        answers = [m for m in outbound if m.kind == "reply"]
        replies += len(answers)
        for answer in answers:
            # Stale: a customer message already waiting that this reply does not cover.
            newest_seen = max(m.created_at for m in inbound if m.created_at < answer.created_at)
            covered = [m for m in inbound if m.turn_id and m.turn_id == answer.turn_id]
            if answer.turn_id is None:  # baseline: a reply covers one message, in order
                index = answers.index(answer)
                covered = [inbound[index]] if index < len(inbound) else []
            if not covered or max(m.created_at for m in covered) < newest_seen:
                stale += 1
        if outbound:
            to_last_reply.append((outbound[-1].created_at - inbound[0].created_at).total_seconds())
    messages = sum(1 for r in rows if r.direction == Message.Direction.INBOUND)
    return {
        "messages": messages,
        "replies": replies,
        "error replies": errors,
        "stale replies": stale,
        "LLM calls": llm_calls,
        "time to last reply, median (s, real)": bench.median(to_last_reply) * SCALE,
        "time to last reply, max (s, real)": max(to_last_reply) * SCALE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=6, help="per customer, 12 s apart")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tools", action="store_true", help="tools off and on, real assistant")
    args = parser.parse_args()
    if args.tools:
        return main_tools(args)
    mode = bench.setup()
    from conversations.threads import in_thread

    random.seed(args.seed)
    offsets = [random.uniform(0, 1.0) for _ in range(args.customers)]
    results = {}
    for name, runner in (("baseline", run_baseline), ("engine", run_engine)):
        bench.reset_data()
        bench.configure(**bench.SCALED, supersede_enabled=True, supersede_cap=2)
        ids = bench.new_conversations(args.customers)

        async def go(runner=runner, ids=ids):
            calls = await runner(ids, args.messages, offsets)
            return await in_thread(figures)(ids, calls)

        results[name] = asyncio.run(go())
    print(f"engine timeline benchmark ({mode}); time scaled 1:{SCALE}, shown in real seconds")
    print(f"{args.customers} customers x {args.messages} messages, 12 s apart; turn ~25 s")
    print(f"{'':40} {'baseline':>10} {'engine':>10}")
    for key in results["engine"]:
        base, ours = results["baseline"][key], results["engine"][key]
        fmt = "{:>10.1f}" if isinstance(ours, float) else "{:>10}"
        print(f"{key:40} {fmt.format(base)} {fmt.format(ours)}")


def main_tools(args) -> None:
    import functools

    import engine_tools

    mode = bench.setup()
    from conversations.threads import in_thread

    print(f"engine timeline with tools ({mode}); time scaled 1:{SCALE}, shown in real seconds")
    print(f"{args.customers} customers x {args.messages} messages, 12 s apart; LLM 15-20 s a call")
    # A short first pass, discarded: the SDK's first calls (imports, pools) would cost the first
    # measured run seconds the others do not pay.
    scenarios = [("warm-up", TEXTS, 2, 2)]
    scenarios += [
        ("connection down", TEXTS, args.customers, args.messages),
        ("no tool needed", NO_TOOL_TEXTS, args.customers, args.messages),
    ]
    for scenario, texts, customers, messages in scenarios:
        results = {}
        for name, tools in (("tools off", False), ("tools on", True)):
            random.seed(args.seed)
            offsets = [random.uniform(0, 1.0) for _ in range(customers)]
            bench.reset_data()
            bench.configure(
                **bench.SCALED,
                supersede_enabled=True,
                supersede_cap=2,
                assistant_tools_enabled=tools,
            )
            ids = bench.new_conversations(customers)

            async def go(ids=ids, offsets=offsets, texts=texts, messages=messages):
                found = await engine_tools.run(
                    ids,
                    messages,
                    offsets,
                    customer=functools.partial(customer, texts=texts),
                    wait_settled=wait_settled,
                )
                # figures() counts no LLM calls here: the fake API's count (in found) wins.
                return await in_thread(figures)(ids, 0) | found

            results[name] = asyncio.run(go())
        if scenario == "warm-up":
            continue
        print(f"\n{scenario}: {' / '.join(texts)}")
        print(f"{'':40} {'tools off':>10} {'tools on':>10}")
        for key, ours in results["tools on"].items():
            off = results["tools off"][key]
            fmt = "{:>10.2f}" if isinstance(ours, float) else "{:>10}"
            print(f"{key:40} {fmt.format(off)} {fmt.format(ours)}")


if __name__ == "__main__":
    main()
