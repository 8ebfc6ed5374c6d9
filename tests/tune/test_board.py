"""The board between a trial driver and its resident Train workers (plain Python, no Ray)."""

from __future__ import annotations

import threading

from rsearch.tune.board import TrialBoard


def _post(board: TrialBoard, trial: str = "t1") -> int:
    return board.post_job(trial, {"epochs": 3}, None, "tok")


def test_jobs_are_taken_in_order_and_an_ended_one_never_again() -> None:
    board = TrialBoard()
    first, second = _post(board, "a"), _post(board, "b")
    assert board.take_job(0, timeout=0)["seq"] == first  # type: ignore[index]
    assert board.take_job(first, timeout=0)["seq"] == second  # type: ignore[index]
    board.post_end(first, None)
    # a restarted worker group (after=0) skips the ended job and takes the open one
    assert board.take_job(0, timeout=0)["trial_id"] == "b"  # type: ignore[index]
    board.post_end(second, None)
    assert board.take_job(0, timeout=0) is None


def test_a_result_moves_the_jobs_resume_point() -> None:
    board = TrialBoard()
    seq = _post(board)
    board.post_result(seq, {"epoch": 1}, "/ckpt/e1")
    board.post_result(seq, {"epoch": 2}, None)  # an epoch without a checkpoint keeps the last
    assert board.take_job(0, timeout=0)["resume_from"] == "/ckpt/e1"  # type: ignore[index]
    assert board.next_event(seq, 0, timeout=0) == ("result", {"epoch": 1}, "/ckpt/e1")
    assert board.next_event(seq, 2, timeout=0) is None
    board.post_end(seq, "Traceback: boom")
    assert board.next_event(seq, 2, timeout=0) == ("end", "Traceback: boom", None)


def test_every_rank_gets_the_answer_the_first_rank_got() -> None:
    board = TrialBoard()
    seq = _post(board)
    assert board.wait_decision(seq, 1, timeout=0) is None  # nothing decided yet
    board.decide(seq, 1, True)
    assert board.wait_decision(seq, 1, timeout=0) is True  # rank 0 asks first
    board.stop(seq)  # Tune stops the trial while rank 1 is still on its way
    assert board.wait_decision(seq, 1, timeout=0) is True  # rank 1: the same answer
    assert board.wait_decision(seq, 2, timeout=0) is False  # the next boundary stops


def test_a_stop_before_anyone_asked_wins_over_a_late_go() -> None:
    board = TrialBoard()
    seq = _post(board)
    board.stop(seq)
    board.decide(seq, 1, True)  # delivered out of order by a threaded actor
    assert board.wait_decision(seq, 1, timeout=0) is False
    assert board.wait_decision(seq, 1, timeout=0) is False


def test_a_waiting_worker_wakes_for_a_job_and_leaves_when_closed() -> None:
    board = TrialBoard()
    taken: list[object] = []
    worker = threading.Thread(target=lambda: taken.append(board.take_job(0, timeout=10)))
    worker.start()
    seq = _post(board)
    worker.join(10)
    assert taken and taken[0]["seq"] == seq  # type: ignore[index]
    board.post_end(seq, None)
    board.close()
    assert board.take_job(seq, timeout=10) == {"close": True}


def test_posting_a_job_forgets_the_ended_ones() -> None:
    board = TrialBoard()
    old = _post(board)
    board.post_end(old, None)
    _post(board)
    assert old not in board._jobs
