"""ImplToggle: which implementation the next run trains, the learner's ("mine") or the reference.

Reactive down: `impl`; `disabled` while a run is going. Message up: `ImplToggle.Changed(impl)` when
the learner flips it (click, or the screen's `i` key calling `flip()`).
"""
from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

IMPLS = ("mine", "reference")


class ImplToggle(Widget):
    impl: reactive[str] = reactive("mine")

    class Changed(Message):
        def __init__(self, toggle: "ImplToggle", impl: str) -> None:
            super().__init__()
            self.toggle, self.impl = toggle, impl

        @property
        def control(self) -> "ImplToggle":
            return self.toggle

    def __init__(self, impl: str = "mine", *, name: str | None = None, id: str | None = None,
                 classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(ImplToggle.impl, impl if impl in IMPLS else "mine")

    def render(self) -> Text:
        parts = [("impl ", "dim")]
        for name in IMPLS:
            on = name == self.impl
            parts += [("● " if on else "○ ", "bold green" if on else "dim"), (name, "bold" if on else "dim"),
                      ("  ", "")]
        parts.append(("(i)", "dim"))
        return Text.assemble(*parts)

    def flip(self) -> None:
        if self.disabled:
            return
        self.impl = IMPLS[1 - IMPLS.index(self.impl)]
        self.post_message(self.Changed(self, self.impl))

    def on_click(self) -> None:
        self.flip()
