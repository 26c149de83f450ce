"""What the chat does besides asking: its slash commands, exporting and copying, and updating
the index in a worker. `QAApp` (qa.tui.app) is built on it."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App
from textual.containers import VerticalScroll
from textual.widgets import ProgressBar

from qa.answers import citation_label
from qa.atomic import atomic_write
from qa.chat import Conversation
from qa.errors import Cancelled, CommittedInterrupt, QAError
from qa.retrieval import Filters, parse_filters
from qa.text import terminal_safe

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from qa.engine import Engine
    from qa.tui.widgets import AnswerCard


class ChatActions(App[None]):
    """Commands, export and index update; the state they use is set up by `QAApp`."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notice as inert text: what it names came from a file, an article or what
        was typed (a path with a control character, a filter like `source:[b]x`), so it is
        never markup and never a terminal control sequence, whatever the caller passed."""
        del markup
        super().notify(
            terminal_safe(message), title=terminal_safe(title), severity=severity,
            timeout=timeout, markup=False,
        )  # fmt: skip

    index_dir: Path
    corpus_dir: Path
    store: Any
    engine: Engine | None
    conversation: Conversation
    filters: Filters
    selected: AnswerCard | None
    _cancel_update: threading.Event
    load_engine: Callable[[], Any]
    """Opens the index again in a worker (an update's result shows at once)."""

    def set_status(self, text: str) -> None:
        raise NotImplementedError

    def refresh_status(self) -> None:
        raise NotImplementedError

    def action_new_conversation(self) -> None:
        raise NotImplementedError

    def action_help(self) -> None:
        raise NotImplementedError

    def action_history(self) -> None:
        raise NotImplementedError

    def run_command(self, text: str) -> None:
        self.query_one("#transcript", VerticalScroll).remove_children(".welcome")
        name, _, rest = text.partition(" ")
        handlers = {
            "/new": lambda: self.action_new_conversation(),
            "/filter": lambda: self.set_filter(rest),
            "/export": lambda: self.action_export(rest.strip() or None),
            "/help": lambda: self.action_help(),
            "/history": lambda: self.action_history(),
        }
        handler = handlers.get(name.lower())
        if handler is None:
            self.notify(f"Unknown command {name}; /help lists them.", severity="warning")
            return
        handler()

    def set_filter(self, spec: str) -> None:
        values: dict[str, str] = {}
        for token in spec.split():
            key, sep, value = token.partition(":")
            if not sep or key not in ("since", "until", "source") or not value:
                self.notify(f"Bad filter {token!r}: use since:DATE until:DATE source:TEXT",
                            severity="error")  # fmt: skip
                return
            values[key] = value
        try:
            self.filters = parse_filters(
                values.get("since"), values.get("until"), values.get("source")
            )
        except QAError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"Filter: {self.filters.describe()}" if self.filters else "Filter cleared.")
        self.refresh_status()

    def conversation_markdown(self) -> str:
        from qa.conversations import conversation_markdown

        filters = self.filters.describe() if self.filters else None
        return conversation_markdown(self.conversation.turns, str(self.index_dir), filters)

    def action_export(self, path: str | None = None) -> None:
        if not self.conversation.turns:
            self.notify("Nothing to export yet.", severity="warning")
            return
        from qa.conversations import data_dir

        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        overwrite = False
        if path and path.endswith("!"):
            path, overwrite = path[:-1].strip(), True
        # without a path: the exports folder beside the saved conversations, never the
        # current folder (under scripts/run, that is the repository)
        target = Path(path).expanduser() if path else data_dir() / "exports" / f"qa-{stamp}.md"
        if target.is_dir():
            # a folder names where to put the export, never what to replace
            target = target / f"qa-{stamp}.md"
        if target.exists() and not overwrite:
            self.notify(
                f"{terminal_safe(str(target))} exists; to replace it: /export {path}!",
                severity="warning",
                markup=False,
            )
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, self.conversation_markdown())
        except OSError as exc:
            self.notify(
                f"Cannot write {terminal_safe(str(target))}: {exc.strerror or exc}",
                severity="error",
                markup=False,
            )
            return
        self.notify(f"Saved the conversation to {terminal_safe(str(target))}", markup=False)

    def action_copy_answer(self) -> None:
        card = self.selected
        if card is None or card.answer is None:
            self.notify("Select an answer first (Tab, or click it).", severity="warning")
            return
        answer = card.answer
        lines = [answer.text]
        for number, citation in enumerate(answer.citations, card.first_marker):
            url = f" {citation.url}" if citation.url else ""
            lines.append(f"[{number}] {citation_label(citation)}{url}")
        self.copy_to_clipboard("\n".join(lines))
        self.notify("Answer and sources copied.")

    def action_update_index(self) -> None:
        if self.engine is None:
            self.notify("The index is not open yet.", severity="warning")
            return
        if any(w.group == "update" and w.is_running for w in self.workers):
            self.notify("An update is already running (Ctrl+X cancels it).")
            return
        self._cancel_update.clear()
        bar = self.query_one("#update-progress", ProgressBar)
        bar.add_class("running")
        bar.update(total=None, progress=0)
        self.set_status("Updating the index… (Ctrl+X cancels)")
        self.update_index()

    def action_cancel_update(self) -> None:
        self._cancel_update.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="update")
    def update_index(self) -> None:
        from qa.index import sync_index

        def progress(report: Any) -> None:
            self.call_from_thread(self._update_progress, report.stage, report.done, report.total)

        assert self.engine is not None  # action_update_index starts this only with an engine
        encoder = self.engine.encoder
        try:
            report = sync_index(
                self.corpus_dir, self.index_dir, lambda _: encoder, progress=progress,
                cancel=self._cancel_update,
            )  # fmt: skip
        except Cancelled:
            self.call_from_thread(self._update_done, None, "Update cancelled; nothing changed.")
            return
        except CommittedInterrupt as exc:
            # Cancelled too late: the store has the update, so the engine must see it too.
            self.call_from_thread(self._update_done, exc.report, "Cancelled too late: ")
            return
        self.call_from_thread(self._update_done, report)

    def _update_progress(self, stage: str, done: int, total: int) -> None:
        from qa.labels import STAGES

        self.query_one("#update-progress", ProgressBar).update(total=total, progress=done)
        label = STAGES.get(stage, (stage, ""))[0]
        self.set_status(f"Updating the index: {label} {done:,}/{total:,}  (Ctrl+X cancels)")

    def _update_done(self, report: Any, message: str | None = None) -> None:
        self.query_one("#update-progress", ProgressBar).remove_class("running")
        if report is None:
            self.set_status(message or "The update failed; the index is as it was.")
            return
        self.notify(
            f"{message or ''}Index updated: {report.added} added, {report.changed} changed, "
            f"{report.removed} removed ({report.embedded_chunks} passages embedded)."
        )
        self.load_engine()
