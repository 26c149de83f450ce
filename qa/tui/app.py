"""The chat in the terminal: ask, follow up, inspect the evidence.

The app only calls the core (`qa.engine`, `qa.chat`, `qa.conversations`, `qa.index`): it
never touches FAISS or SQLite itself. Slow work runs in thread workers: loading the model,
answering, building and updating the index; the first frame appears at once, and a question
typed before the model is ready is answered as soon as it is.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import Worker, WorkerState

from qa.answers import Citation, Result
from qa.chat import Conversation, Turn
from qa.errors import QAError
from qa.retrieval import Filters
from qa.text import terminal_safe

if TYPE_CHECKING:
    from qa.conversations import ConversationStore
    from qa.encoders import Encoder
    from qa.engine import Engine

from qa.tui.actions import ChatActions
from qa.tui.screens import ArticleScreen, BuildScreen, HelpScreen, HistoryScreen, help_text
from qa.tui.widgets import (
    AnswerCard,
    HistoryInput,
    QuestionCard,
    SourcesPanel,
    StarterQuestion,
)


class QAApp(ChatActions):
    """Chat over one index (its commands, export and index update: `ChatActions`)."""

    TITLE = "qa"
    # the question box has the focus from the first frame: keys typed while the app starts
    # (before on_mount runs) would otherwise go to the transcript and be lost
    AUTO_FOCUS = "#question"
    CSS = """
    #main { height: 1fr; }
    #transcript { width: 3fr; padding: 0 1; }
    #sources { display: none; }
    #sources.shown { display: block; }
    .starter { color: $text-muted; padding: 0 1 0 3; }
    .starter:hover { color: $text; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    #update-progress { height: 1; padding: 0 1; display: none; }
    #update-progress.running { display: block; }
    HistoryInput { margin: 0 1; }
    .note { color: $text-muted; padding: 0 1 0 3; }
    """
    # Footer order is this order: what must fit in 80 columns comes first; the rest is in the
    # help (F1) and the command palette (Ctrl+P), both generated from these bindings.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", tooltip="Keys and commands"),
        Binding("ctrl+n", "new_conversation", "New chat", tooltip="Start a new conversation"),
        Binding("ctrl+r", "history", "History", tooltip="Reopen an earlier conversation"),
        Binding("ctrl+s", "export", "Export", tooltip="Save the conversation as Markdown"),
        Binding("f5", "update_index", "Update", tooltip="Index new and changed articles"),
        Binding("ctrl+q", "quit", "Quit", tooltip="Leave qa"),
        Binding(
            "ctrl+y",
            "copy_answer",
            "Copy answer",
            show=False,
            tooltip="Copy the selected answer with its sources",
        ),
        Binding(
            "ctrl+x",
            "cancel_update",
            "Cancel update",
            show=False,
            tooltip="Stop a running index update",
        ),
    ]
    # Actions that make no sense while the build screen is up: hidden from its footer.
    CHAT_ACTIONS = frozenset(
        {"new_conversation", "history", "export", "update_index", "copy_answer", "cancel_update"}
    )

    def __init__(
        self,
        index_dir: Path,
        corpus_dir: Path,
        store: Any = None,
        encoder: Any = None,
    ) -> None:
        super().__init__()
        self.index_dir = Path(index_dir)
        self.corpus_dir = Path(corpus_dir)
        self.store = store
        self.encoder = encoder
        self.engine: Engine | None = None
        self.starters: list[str] = []
        """The welcome's suggested questions, checked against the index they ask."""
        self.conversation = Conversation()
        self._question_card: QuestionCard | None = None
        self.conversation_id: int | None = None
        self.filters = Filters()
        self.pending: deque[str] = deque()
        self.asking = False
        self.markers = 0
        self.selected: AnswerCard | None = None
        self._cancel_update = threading.Event()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield VerticalScroll(id="transcript")
            yield SourcesPanel(id="sources")
        yield ProgressBar(total=None, show_eta=True, id="update-progress")
        yield Static("", id="status", markup=False)
        yield HistoryInput(placeholder="Ask a question about the news  (/help for commands)",
                           select_on_focus=False,
                           id="question")  # fmt: skip
        yield Footer()

    def on_mount(self) -> None:
        from qa.index import index_exists
        from qa.tui import settings

        if self.store is not None and self.store.moved_aside is not None:
            self.notify(
                f"The saved conversations were damaged: moved to {self.store.moved_aside}; "
                "new ones are kept again.",
                severity="warning",
                timeout=15,
                markup=False,
            )
        saved, problem = settings.read()
        if problem is not None:
            self.notify(
                f"Settings not read: {problem}; the defaults are used and the file is left as "
                "it is.",
                severity="warning",
                timeout=15,
                markup=False,
            )
        theme = saved.get("theme")
        if theme in self.available_themes:
            self.theme = theme
        self.theme_changed_signal.subscribe(self, lambda t: settings.save(theme=t.name))
        self.query_one(HistoryInput).focus()
        if index_exists(self.index_dir):
            self.set_status("Loading the model…")
            self.load_engine()
        else:
            self.set_status("No index yet.")
            self.push_screen(
                BuildScreen(str(self.corpus_dir), str(self.index_dir), self._build),
                self._after_build,
            )

    def set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(Content(text))

    def _index_line(self) -> str:
        if self.engine is None:
            return ""
        status = self.engine.status()
        updated = (status.get("updated_at") or "")[:16].replace("T", " ")
        model = str(status.get("model", "")).rsplit("/", 1)[-1]
        line = (
            f"{status['articles']:,} articles · {status['chunks']:,} chunks · {model} · "
            f"updated {updated}"
        )
        if self.filters:
            line += f" · filter {self.filters.describe()}"
        return line

    def refresh_status(self) -> None:
        self.sub_title = self._index_line()
        if self.engine is not None and not self.asking:
            self.set_status("Ready." if not self.pending else "Answering…")

    # ------------------------------------------------------------------ engine

    def _build(self, progress: Any, cancel: threading.Event) -> Any:
        from qa.encoders import encoder_factory
        from qa.index import sync_index

        # an encoder given to the app (tests: a fake one) builds the index too
        factory = (lambda _: self.encoder) if self.encoder is not None else encoder_factory(None)
        return sync_index(
            self.corpus_dir, self.index_dir, factory, full=True, progress=progress, cancel=cancel
        )

    def _after_build(self, built: bool | None) -> None:
        if built:
            self.set_status("Index built. Loading the model…")
            self.load_engine()
        else:
            self.exit()

    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def load_engine(self) -> None:
        from qa.engine import Engine

        engine = Engine.open(self.index_dir, self.encoder)
        engine.warm_up()
        # asked here, off the UI thread: each suggestion must answer with the story it names
        starters = engine.starter_questions()
        self.call_from_thread(self._engine_ready, engine, starters)

    def _engine_ready(self, engine: Engine, starters: list[str] | None = None) -> None:
        old, self.engine = self.engine, engine
        self.starters = starters or []
        self.encoder = engine.encoder
        if old is not None:
            old.close()
        self.refresh_status()
        if not self.conversation.turns and not self.pending:
            self._show_welcome()
        self._ask_next()

    def _show_welcome(self) -> None:
        """An empty chat shows what the index holds and a few questions it can answer."""
        transcript = self.query_one("#transcript", VerticalScroll)
        transcript.remove_children(".welcome")
        assert self.engine is not None  # shown once the engine is ready
        overview = self.engine.overview()
        span = ""
        if overview["earliest"] and overview["latest"]:
            span = f", dated {overview['earliest'][:10]} to {overview['latest'][:10]}"
        widgets: list[Static] = [
            Static(
                Content(
                    f"{overview['articles']:,} articles{span}. Ask anything about them"
                    + ("; for example (click one, or type your own):" if self.starters else ".")
                ),
                classes="note welcome",
            )
        ]
        widgets.extend(StarterQuestion(question) for question in self.starters)
        transcript.mount_all(widgets)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # the build screen offers only its own keys (and quitting)
        return not (action in self.CHAT_ACTIONS and isinstance(self.screen, BuildScreen))

    def get_system_commands(self, screen: Any) -> Any:
        """The command palette (Ctrl+P): the app's own commands first, then Textual's (theme,
        keys, screenshot...)."""
        from textual.app import SystemCommand

        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action in ("quit",) or not self.check_action(binding.action, ()):
                continue
            yield SystemCommand(
                binding.description, binding.tooltip or binding.description,
                lambda action=binding.action: self.run_action(action),
            )  # fmt: skip
        yield SystemCommand(
            "Filter", "Only search some articles: type /filter since:… until:… source:…",
            lambda: self._prefill("/filter "),
        )  # fmt: skip
        yield from super().get_system_commands(screen)

    def _prefill(self, text: str) -> None:
        box = self.query_one(HistoryInput)
        box.value = text
        box.cursor_position = len(text)
        box.focus()

    @on(StarterQuestion.Chosen)
    def starter_chosen(self, event: StarterQuestion.Chosen) -> None:
        box = self.query_one(HistoryInput)
        box.remember(event.question)
        box.focus()
        self._enqueue(event.question)

    def action_focus_answers(self) -> None:
        """Tab from the question box: the newest answer first (the oldest is a scroll away)."""
        cards = list(self.query(AnswerCard))
        if not cards:
            self.screen.focus_next()
            return
        newest = cards[-1].result
        first_of_newest = next(card for card in cards if card.result is newest)
        first_of_newest.focus()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        message = str(error) if isinstance(error, QAError) else f"{type(error).__name__}: {error}"
        self.notify(message, severity="error", timeout=10)
        if event.worker.group == "ask":
            self.asking = False
            self.set_status("That question failed; ask another.")
            self._ask_next()
        elif event.worker.group == "engine":
            self.set_status(f"Cannot open the index: {message}")
        elif event.worker.group == "update":
            self._update_done(None)

    # ------------------------------------------------------------------ asking

    @on(HistoryInput.Submitted)
    def submitted(self, event: HistoryInput.Submitted) -> None:
        text = event.value.strip()
        box = self.query_one(HistoryInput)
        box.value = ""
        if not text:
            return
        box.remember(text)
        if text.startswith("/"):
            self.run_command(text)
            return
        self._enqueue(text)

    def _enqueue(self, question: str) -> None:
        """Queue a question: asked now, or as soon as the model is ready."""
        self.pending.append(question)
        if self.engine is None:
            self.set_status(
                "The model is loading; your question will be answered when it is ready."
            )
        self._ask_next()

    def _ask_next(self) -> None:
        if self.asking or self.engine is None or not self.pending:
            return
        question = self.pending.popleft()
        query = self.conversation.query_for(question)
        transcript = self.query_one("#transcript", VerticalScroll)
        transcript.remove_children(".welcome")
        self._question_card = QuestionCard(question, query)
        transcript.mount(self._question_card)
        transcript.scroll_end(animate=False)
        self.asking = True
        self.set_status("Searching…")
        self.ask(question, self.filters)

    @work(thread=True, exit_on_error=False, group="ask")
    def ask(self, question: str, filters: Filters) -> None:
        assert self.engine is not None  # questions are asked once the engine is ready
        turn = self.conversation.answer(self.engine.ask, question, filters=filters)
        self.call_from_thread(self._answered, turn)

    def _answered(self, turn: Turn) -> None:
        if self._question_card is not None:
            self._question_card.show_query(turn.query)
        self.conversation.turns.append(turn)
        if self.store is not None:
            if self.conversation_id is None:
                self.conversation_id = self.store.start(
                    turn.question, str(self.index_dir.resolve())
                )
            self.store.add_turn(self.conversation_id, turn)
        cards = self._render_result(turn.result)
        self.asking = False
        self.refresh_status()
        if cards:
            self._select(cards[0])
        self._ask_next()

    def _render_result(self, result: Result) -> list[AnswerCard]:
        transcript = self.query_one("#transcript", VerticalScroll)
        cards: list[AnswerCard] = []
        if result.not_found:
            # related passages are numbered on through the conversation like citations
            cards.append(AnswerCard(result, None, self.markers + 1))
            self.markers += len(result.related)
        for index, answer in enumerate(result.answers):
            cards.append(AnswerCard(result, index, self.markers + 1))
            self.markers += len(answer.citations)
        transcript.mount_all(cards)
        transcript.scroll_end(animate=False)
        return cards

    def _select(self, card: AnswerCard) -> None:
        self.selected = card
        panel = self.query_one(SourcesPanel)
        panel.show(card)
        # the panel takes room only once there is something to show (80 columns are few)
        panel.set_class(bool(panel.citations), "shown")

    @on(AnswerCard.Selected)
    def answer_selected(self, event: AnswerCard.Selected) -> None:
        self._select(event.card)

    @on(AnswerCard.OpenRequested)
    async def answer_open_requested(self, event: AnswerCard.OpenRequested) -> None:
        box = self.query_one(HistoryInput)
        if box.value.strip():
            # Keys typed fast (or pasted) after an answer had focus: the Enter that ends them
            # can reach the answer before the focus moves. It belongs to the question box.
            box.focus()
            await box.action_submit()
            return
        citations = event.card.citations
        if citations:
            self._open_citation(citations[0])

    @on(SourcesPanel.Opened)
    def citation_opened(self, event: SourcesPanel.Opened) -> None:
        self._open_citation(event.citation)

    def on_key(self, event: Any) -> None:
        # Typing while an answer or a source has focus goes to the question box, as in a chat.
        if self.screen is not self.screen_stack[0] or not event.is_printable:
            return
        box = self.query_one(HistoryInput)
        if self.focused is box or event.character is None:
            return
        box.focus()
        box.insert_text_at_cursor(event.character)
        event.stop()

    def _open_citation(self, citation: Citation) -> None:
        if self.engine is None:
            return
        article = self.engine.article(citation.article_id)
        if article is None:
            self.notify("That article is no longer in the index.", severity="warning")
            return
        self.push_screen(ArticleScreen(article, citation.char_start, citation.char_end))

    # ------------------------------------------------------------------ commands

    def action_new_conversation(self) -> None:
        self.conversation = Conversation()
        self.conversation_id = None
        self.markers = 0
        self.query_one("#transcript", VerticalScroll).remove_children()
        self.query_one(SourcesPanel).show(None)
        self.query_one(SourcesPanel).remove_class("shown")
        if self.engine is not None:
            self._show_welcome()
        self.notify("New conversation.")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_text(self.BINDINGS)))

    def action_history(self) -> None:
        if self.store is None:
            self.notify("Conversations are not being saved.", severity="warning")
            return
        self.push_screen(HistoryScreen(self.store.recent()), self._reopen)

    def _reopen(self, conversation_id: int | None) -> None:
        if conversation_id is None or self.store is None:
            return
        turns = self.store.turns(conversation_id)
        info = next((c for c in self.store.recent() if c.id == conversation_id), None)
        if info is not None and Path(info.index_dir).resolve() != self.index_dir.resolve():
            self.notify(
                f"That conversation was held over the index {terminal_safe(info.index_dir)}; "
                f"follow-ups now search {terminal_safe(str(self.index_dir))}",
                severity="warning",
                markup=False,
            )
        self.action_new_conversation()
        self.conversation.turns = list(turns)
        self.conversation_id = conversation_id
        transcript = self.query_one("#transcript", VerticalScroll)
        transcript.remove_children(".welcome")
        for turn in turns:
            transcript.mount(QuestionCard(turn.question, turn.query))
            self._render_result(turn.result)


def create_app(
    index_dir: Path,
    corpus_dir: Path,
    save_conversations: bool = True,
    *,
    store: ConversationStore | None = None,
    encoder: Encoder | None = None,
) -> QAApp:
    """The one app factory, used by the CLI and the tests: conversations are kept in `store`
    (default: the user's conversation file, unless `save_conversations` is False); `encoder`
    replaces the index's own (tests share one loaded model)."""
    if store is None and save_conversations:
        from qa.conversations import ConversationStore

        store = ConversationStore()
    return QAApp(index_dir, corpus_dir, store=store, encoder=encoder)
