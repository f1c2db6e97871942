"""Run N daphne processes that share one listening socket (the kernel spreads connections).

    .venv/bin/python bench/daphne_pool.py --processes 2 --port 8002

How several daphne processes serve one port on one machine, for the ingest benchmark: daphne
is one process held to one core by the GIL. It prints the daphne PIDs on its first line (for
`bench/ingest.py --server-pid`) and stops them all on SIGTERM or Ctrl-C. In production the
same is done by systemd socket activation (`daphne --fd 3`) or by a proxy in front of daphne
processes on several ports (README, "Running in production").
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--access-log", default="/dev/null", help="daphne's --access-log")
    args = parser.parse_args()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(1024)
    fd = listener.fileno()
    daphne = str(Path(sys.executable).with_name("daphne"))
    command = [daphne, "--fd", str(fd), "--access-log", args.access_log]
    processes = [
        subprocess.Popen([*command, "supportbot.asgi:application"], pass_fds=(fd,), cwd=ROOT)
        for _ in range(args.processes)
    ]
    print(" ".join(str(p.pid) for p in processes), flush=True)

    def stop(*_):
        for process in processes:
            process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [process.wait() for process in processes]
    return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
    sys.exit(main())
