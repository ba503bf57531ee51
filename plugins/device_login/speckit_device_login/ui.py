"""How /login talks to the user: the code first (GitHub CLI's wording), then the URL,
then a countdown — a spinner line on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import contextlib
from typing import Any

from .flow import DeviceAuthorization

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
PLAIN_EVERY_S = 30.0  # non-tty: one "time left" line this often


def clock_text(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


class LoginView:
    def __init__(self, output: Any) -> None:
        self.output = output
        stream = output.stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._frame = 0
        self._last_plain: float | None = None
        self._line_open = False

    def show_code(self, name: str, auth: DeviceAuthorization) -> None:
        self.output.print(f"Logging in to {name}.")
        self.output.print(f"! First copy your one-time code: {auth.user_code}")
        self.output.print(f"Then open {auth.verification_uri} in a browser and enter the code.")
        if auth.verification_uri_complete:
            self.output.print(f"Or open {auth.verification_uri_complete} (the code is filled in).")
        self.output.print(
            f"Waiting for authorization ({clock_text(auth.expires_in)} left; Ctrl-C cancels)..."
        )

    def tick(self, remaining: float) -> None:
        if self.tty:
            self._frame = (self._frame + 1) % len(SPINNER)
            spinner = SPINNER[self._frame]
            text = f"\r\x1b[K{spinner} waiting for approval, {clock_text(remaining)} left"
            with contextlib.suppress(OSError, ValueError):
                self.output.stream.write(text)
                self.output.stream.flush()
                self._line_open = True
            return
        if self._last_plain is None:
            self._last_plain = remaining
        elif self._last_plain - remaining >= PLAIN_EVERY_S:
            self._last_plain = remaining
            # (no "authorization:" here: redact() masks what follows a secret-looking name)
            self.output.print(f"waiting for approval, {clock_text(remaining)} left")

    def notice(self, message: str) -> None:
        self.end()
        self.output.info(message)

    def end(self) -> None:
        if self._line_open:
            with contextlib.suppress(OSError, ValueError):
                self.output.stream.write("\r\x1b[K")
                self.output.stream.flush()
            self._line_open = False
