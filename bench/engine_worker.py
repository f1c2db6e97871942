"""The worker process of bench/engine_scale.py: `manage.py runworker supportbot-inbound` (with its
sweeper, settings refresher and graceful stop) with the scaled fake CRM and LLM of
engine_common. Not a benchmark by itself: engine_scale.py starts it, stores the messages and
sends the wakes from its own process (daphne's job in production), and reads this process's CPU.

Prints "ready" once the fakes are in place, and "llm_calls N" when SIGTERM has stopped it.
"""

import argparse

import engine_common as bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100)
    args = parser.parse_args()
    bench.setup(prepare=False)
    from django.core.management import call_command

    llm = bench.FakeLlm(15 / args.scale, 20 / args.scale)
    bench.patch_engine(llm, bench.FakeCrm(8 / args.scale, 10 / args.scale))
    print("ready", flush=True)
    call_command("runworker", "supportbot-inbound", verbosity=0)  # no start/stop lines
    print(f"llm_calls {llm.calls}", flush=True)


if __name__ == "__main__":
    main()
