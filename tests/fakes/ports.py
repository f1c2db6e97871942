"""Free loopback ports for servers a test starts on a port it names (daphne, a redis-server that
is restarted on the same port).

Chosen below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): a port
from bind(0) is taken from that range again at once by any outgoing connection or any server
on port 0, and `make test` runs two suites side by side that make plenty of both, so a port
freed by bind(0) and bound again a moment later by daphne, or by a restarted Redis, could be gone.
"""

import random
import socket

BELOW_EPHEMERAL = range(20000, 32768)


def free_port() -> int:
    for _ in range(50):
        port = random.choice(BELOW_EPHEMERAL)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # that range is busy: any free port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
