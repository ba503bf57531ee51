"""``Output.markdown``: rendered on a terminal (a real pty), coloured only when colour
is on, the Markdown text itself when not a terminal; redacted either way."""

from __future__ import annotations

import io
import os
import pty

import pytest

from agentshell.output import Output
from agentshell.redact import register_secret

DOC = "# Title\n\nSome **bold** text.\n\n- one\n- two\n"


def on_a_pty(color: str) -> str:
    """What ``markdown(DOC)`` writes to a real terminal."""
    master, slave = pty.openpty()
    stream = open(slave, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    try:
        Output(stream, stream, color=color).markdown(DOC)  # type: ignore[arg-type]
        stream.flush()
        chunks = []
        while True:
            import select

            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                break
            chunks.append(os.read(master, 65536))
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        stream.close()
        os.close(slave)
        os.close(master)


def test_markdown_piped_is_the_text_itself_redacted() -> None:
    register_secret("sk-markdown-secret-123456")
    out = io.StringIO()
    Output(out, io.StringIO(), color="always").markdown(DOC + "key sk-markdown-secret-123456\n")
    assert out.getvalue().startswith(DOC)
    assert "sk-markdown-secret-123456" not in out.getvalue()
    assert "\x1b[" not in out.getvalue()


@pytest.mark.parametrize("color", ["always", "never"])
def test_markdown_on_a_terminal_is_rendered(color: str) -> None:
    shown = on_a_pty(color)
    assert "Title" in shown and "# Title" not in shown
    assert "**bold**" not in shown and "bold" in shown
    assert "•" in shown  # list bullets, rendered
    has_sgr_colour = any(f"\x1b[{code}" in shown for code in ("1m", "1;", "3", "4"))
    assert has_sgr_colour == (color == "always"), repr(shown)
