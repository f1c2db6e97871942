"""A clock that only moves when the code under test sleeps."""


class FakeTime:
    """Pass `clock` and `sleep` to code that waits (conversations.backoff.wait_with_backoff)."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
