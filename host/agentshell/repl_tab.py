"""Tab in the REPL: completion that is applied before the next key is read.

prompt_toolkit's own Tab starts the completer as a background task and drops its result
if the text changed meanwhile, so keys that follow a Tab at paste speed (``/spec-st⇥ X``
in one burst) lose the completion. Here Tab completes synchronously instead. While
plugins still load (the instant prompt) the commands are not known yet: the Tab and
every key after it are held back, in order, until loading is done.
"""

from __future__ import annotations

import asyncio
import contextlib

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.completion import CompleteEvent, Completer
from prompt_toolkit.completion.base import get_common_complete_suffix
from prompt_toolkit.filters import emacs_insert_mode, vi_insert_mode
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.key_binding.key_processor import KeyPress, KeyProcessor


class KeyHold:
    """Keeps key presses from being processed until :meth:`release`, in arrival order.

    Wraps the key processor's ``process_keys`` (what the application calls after each
    read from the terminal): while holding, queued keys move aside instead of running.
    """

    def __init__(self, processor: KeyProcessor) -> None:
        self.processor = processor
        self.held: list[KeyPress] = []
        self.active = False
        original = processor.process_keys

        def process_keys() -> None:
            if self.active:
                self._take()
                return
            original()

        processor.process_keys = process_keys  # type: ignore[method-assign]

    def _take(self) -> None:
        queue = self.processor.input_queue
        self.held.extend(queue)
        queue.clear()

    def hold(self) -> None:
        """Called from a key handler: the keys after this one wait (the processor's
        loop ends, since the queue it reads is now empty)."""
        self.active = True
        self._take()

    def release(self, process: bool) -> None:
        self.active = False
        held, self.held = self.held, []
        self.processor.input_queue.extendleft(reversed(held))
        if process:
            self.processor.process_keys()


def complete_now(buffer: Buffer, completer: Completer) -> None:
    """What prompt_toolkit's Tab does, synchronously: a unique completion is applied,
    otherwise the common part is inserted and the menu shows the choices."""
    document = buffer.document
    event = CompleteEvent(completion_requested=True)
    try:
        completions = list(completer.get_completions(document, event))
    except Exception:  # a plugin's completer must not break the prompt
        return
    if not completions:
        return
    if len(completions) == 1:
        buffer.apply_completion(completions[0])
        return
    common = get_common_complete_suffix(document, completions)
    if common:
        buffer.insert_text(common)
    buffer.start_completion(insert_common_part=False)


def tab_bindings(completer: Completer, ready: asyncio.Future[None], keys: KeyHold) -> KeyBindings:
    """The Tab binding; ``keys`` holds the application's keys while plugins load."""
    bindings = KeyBindings()

    @bindings.add("tab", filter=vi_insert_mode | emacs_insert_mode)
    def _tab(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.complete_state:  # the menu is open: next entry, as before
            buffer.complete_next()
            return
        if ready.done():
            complete_now(buffer, completer)
            return
        keys.hold()
        app = event.app

        async def when_loaded() -> None:
            completed = False
            try:
                await asyncio.shield(ready)
                complete_now(buffer, completer)
                completed = True
            finally:
                with contextlib.suppress(Exception):  # the prompt may be gone (SIGTERM)
                    keys.release(process=completed and app.is_running and not app.is_done)

        app.create_background_task(when_loaded())

    return bindings


__all__ = ["KeyHold", "complete_now", "tab_bindings"]
