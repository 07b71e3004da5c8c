"""The drill's measurements (drill/measure.py), pure: outage windows from the samples, lost
canaries from what the stores still hold, and the exit status."""

from drill import measure
from drill.measure import Sample


def samples(store, pattern, operation="write", step=1.0):
    """`pattern` of ok (o) and failed (x) samples, one a `step` apart, keys k0, k1, ..."""
    return [
        Sample(
            i * step,
            store,
            operation,
            c == "o",
            f"k{i}" if c == "o" and operation == "write" else "",
            "" if c == "o" else "down",
        )
        for i, c in enumerate(pattern)
    ]


def test_the_longest_run_of_failures_is_the_outage():
    taken = samples("db", "ooxxxoxxoo")
    assert measure.longest_outage(taken, end=10) == 3.0  # failures at 2, 3, 4; back at 5
    # An outage that has not ended by the end of the drill lasts to the end.
    assert measure.longest_outage(samples("db", "ooxx"), end=6.0) == 4.0
    assert measure.longest_outage(samples("db", "oooo"), end=4) == 0.0


def test_an_acknowledged_canary_the_store_no_longer_holds_is_lost():
    taken = samples("queue", "ooxo") + samples("queue", "oooo", "check")
    found = measure.results(taken, {"queue": {"k0", "k3"}}, end=4)["queue"]
    assert (found.acknowledged, found.lost, found.failed_writes, found.errors) == (3, ("k1",), 1, ("down",))
    assert not found.passed


def test_the_exit_status_fails_on_any_loss_or_a_store_that_proved_nothing():
    good = measure.results(samples("a", "oxo"), {"a": {"k0", "k2"}}, end=3)
    assert measure.exit_status(good) == 0
    lost = measure.results(samples("a", "oxo") + samples("b", "oo"), {"a": {"k0", "k2"}, "b": {"k0"}}, end=3)
    assert measure.exit_status(lost) == 1
    nothing = measure.results(samples("a", "xxx"), {"a": set()}, end=3)
    assert measure.exit_status(nothing) == 1
    assert measure.exit_status({}) == 1


def test_the_report_says_the_same_in_json_and_markdown():
    found = measure.results(samples("cache", "oxxo"), {"cache": {"k0"}}, end=4)
    record = measure.as_dict(found)["cache"]
    assert (record["writeOutageSeconds"], record["lost"], record["lostCanaries"], record["passed"]) == (
        2.0,
        1,
        ["k3"],
        False,
    )
    assert "| cache | 4 (2) | 0 (0) | 2.0 s | 0.0 s | 1 of 2 |" in measure.markdown(found)


def test_a_slow_success_is_part_of_the_outage():
    """A proxy holding a write through a failover answers after 6 s: the write is acknowledged
    (its canary is checked for loss), and those 6 s are an outage, not none."""
    samples = [
        Sample(0.0, "db", "write", True, "k0", "", 0.01),
        Sample(1.0, "db", "write", True, "k1", "", 6.0),
        Sample(7.0, "db", "write", True, "k2", "", 0.01),
    ]
    [found] = measure.results(samples, {"db": {"k0", "k1", "k2"}}, 8.0).values()
    assert found.write_outage_s == 6.0 and found.acknowledged == 3 and found.lost == () and found.passed
