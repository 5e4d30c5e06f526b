"""The one waiting helper every wait of the project goes through."""

from __future__ import annotations

import pytest

from pangeo_binder.waiting import Waiting, wait_until


def test_it_answers_what_the_probe_found_and_tells_each_new_reason_once():
    answers = iter([Waiting("pulling"), Waiting("pulling"), Waiting("starting"), "ready"])
    told: list[str] = []
    found = wait_until(lambda: next(answers), 5, every=0, tell=told.append,
                       timed_out=lambda why: AssertionError(why))
    assert found == "ready"
    assert told == ["pulling", "starting"]


def test_a_found_none_is_an_answer_not_a_reason_to_wait():
    assert wait_until(lambda: None, 5, every=0, timed_out=AssertionError) is None


def test_after_the_timeout_it_raises_naming_the_last_reason():
    with pytest.raises(TimeoutError, match="still: image pull"):
        wait_until(lambda: Waiting("image pull"), 0.05, every=0.01,
                   timed_out=lambda why: TimeoutError(f"still: {why}"))


def test_a_probe_that_sees_no_hope_stops_the_wait_at_once():
    def hopeless():
        raise RuntimeError("ErrImagePull")

    with pytest.raises(RuntimeError, match="ErrImagePull"):
        wait_until(hopeless, 60, timed_out=AssertionError)
