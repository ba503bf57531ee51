"""``Output.stream_answer()`` when stdout is not a terminal (a pipe, a file): the text is
written as it arrives, redacted, nothing erased and nothing re-rendered. The terminal
side (pty + pyte screen) is in test_output_stream_tty.py."""

from __future__ import annotations

import asyncio
import io

import pytest

from agentshell import AnswerStream, Output
from agentshell.agents import Delta
from agentshell.redact import register_secret


class Recording(io.StringIO):
    """A non-terminal text stream that remembers each write (to see what was written
    when, not only the final text)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def make() -> tuple[Output, Recording]:
    out = Recording()
    return Output(out, io.StringIO(), color="never"), out


def test_words_are_written_as_they_arrive_without_waiting_for_a_newline() -> None:
    output, out = make()
    answer = output.stream_answer()
    assert isinstance(answer, AnswerStream)
    answer.write("Hello, ")
    assert out.getvalue() == "Hello, "
    answer.write("wor")  # a word in progress waits for its end
    assert out.getvalue() == "Hello, "
    answer.write("ld and more")
    assert out.getvalue() == "Hello, world and "
    answer.finish()
    assert out.getvalue() == "Hello, world and more\n"


def test_piped_markdown_is_left_as_written() -> None:
    output, out = make()
    with output.stream_answer() as answer:
        answer.write("# Title\n\n```python\nprint(1)\n```\n")
    assert out.getvalue() == "# Title\n\n```python\nprint(1)\n```\n"


def test_a_secret_split_across_two_pieces_never_reaches_the_output() -> None:
    register_secret("hunter2-streamed-secret-value")
    output, out = make()
    answer = output.stream_answer()
    answer.write("the password is hunter2-str")
    answer.write("eamed-secret-value, keep it")
    answer.write(" safe; api_key = sk-abc")
    answer.write("defghijklmnop and")
    answer.write(' password = "two wo')
    answer.write('rds" done')
    answer.finish()
    text = out.getvalue()
    assert "hunter2" not in text and "str" not in "".join(out.writes[:1])
    assert "sk-abc" not in text and "defghijkl" not in text
    assert "two" not in text and "wo" not in text.replace("password", "")
    assert text == ("the password is ****, keep it safe; api_key = **** and password = **** done\n")


def test_terminal_control_characters_from_a_model_are_not_written() -> None:
    output, out = make()
    with output.stream_answer() as answer:
        answer.write("bell\x07 and \x1b[2Jclear\r\n")
    assert out.getvalue() == "bell and [2Jclear\n"


def test_reset_starts_the_answer_again_on_a_new_line() -> None:
    output, out = make()
    answer = output.stream_answer()
    answer.delta(Delta("first try ", 1))
    answer.delta(Delta("second ", 2))
    answer.delta(Delta("try", 2))
    assert answer.text == "second try"
    answer.finish()
    assert out.getvalue() == "first try \nsecond try\n"


def test_finish_adds_the_note_and_is_idempotent() -> None:
    output, out = make()
    answer = output.stream_answer()
    answer.write("partial")
    answer.finish(note="(cancelled)")
    answer.finish()
    answer.write("late")
    assert out.getvalue() == "partial\n(cancelled)\n"


@pytest.mark.parametrize(
    ("error", "note"),
    [(KeyboardInterrupt(), "(cancelled)"), (asyncio.CancelledError(), "(cancelled)")],
)
def test_leaving_by_cancellation_marks_the_answer_cancelled(
    error: BaseException, note: str
) -> None:
    output, out = make()
    with pytest.raises(type(error)), output.stream_answer() as answer:
        answer.write("half of it")
        raise error
    # the unfinished last word is left out: it may be the first half of a secret
    assert out.getvalue() == f"half of \n{note}\n"


def test_leaving_by_an_error_marks_the_answer_incomplete() -> None:
    output, out = make()
    with pytest.raises(RuntimeError), output.stream_answer() as answer:
        answer.write("half ")
        raise RuntimeError("boom")
    assert out.getvalue() == "half \n(incomplete)\n"


def test_a_stopped_answer_never_shows_a_secret_s_first_half() -> None:
    output, out = make()
    answer = output.stream_answer()
    answer.write("use api_key = sk-abcd")  # the key would have gone on
    answer.finish(note="(cancelled)", stopped=True)
    assert out.getvalue() == "use api_key = \n(cancelled)\n"


def test_a_message_printed_meanwhile_follows_the_partial_line() -> None:
    output, out = make()
    answer = output.stream_answer()
    answer.write("streaming ")
    output.info("a1: retrying in 1.0s")
    answer.write("on ")
    answer.finish()
    # piped, nothing can be taken back: the message interrupts the text
    assert "a1: retrying in 1.0s\n" in out.getvalue()
    assert out.getvalue().startswith("streaming ")
