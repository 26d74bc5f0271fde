"""The live display on a terminal: where the run stands, what it waits for, how long is left.

Failures print above the live area as they happen; the run ends with a table of every
account (as ``status`` prints one). The plan and the table go to stdout, the live area
to stderr; nothing of it shows where the output is not a terminal (see ``PlainReporter``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from provisioner.apply.events import (
    Event,
    Finished,
    PlanReady,
    StepFailed,
    StepStarted,
)
from provisioner.cli.output.lines import Lines, printable, styled
from provisioner.cli.output.notices import notice
from provisioner.cli.output.plain import WAIT_LINE_FROM, apply_summary_line, failure_line
from provisioner.cli.output.tally import Tally
from provisioner.plan.render import render_text
from provisioner.redact import Redactor
from provisioner.waits import Wait

_RUNNING_SHOWN = 4
_WAITS_SHOWN = 3


class LiveReporter:
    def __init__(
        self,
        redactor: Redactor,
        lines: Lines,
        *,
        compact: bool | None = None,
        color: bool = True,
        refresh_per_second: float = 4,
    ) -> None:
        """``color``: for what goes to stdout (the plan, the table), which may be a file."""
        # a step's words and errors carry text from Vault, dYdX and signers: no control code of theirs
        self.redact: Callable[[str], str] = lambda text: redactor.redact(printable(text))
        self._redact_rendered = redactor.redact  # rich's own output: its colors stay
        self.color = color
        self.lines = lines
        self.compact = compact
        self.tally = Tally()
        self.console = Console(file=lines.stderr, highlight=False)
        self._refresh = refresh_per_second
        self._lock = threading.RLock()
        self._live: Live | None = None

    def __enter__(self) -> LiveReporter:
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, Finished):
            # not under the lock: stopping joins the refresh thread, which takes it to render
            self._stop()
            with self._lock:
                self.tally.on(event)
                self._summary(event)
            return
        with self._lock:
            self.tally.on(event)
            if isinstance(event, PlanReady):
                text = render_text(event.plan, color=self.color, compact=self.compact)
                self.lines.out(styled(self.redact(text), color=self.color))
            elif (said := notice(event)) is not None:
                if said.result:
                    self.lines.out(said.line)
                else:
                    self._above(said.line, style=said.style)
            elif isinstance(event, StepStarted):
                self._start()
            elif isinstance(event, StepFailed):
                where = event.step.id if event.step else "journal"
                self._above(f"  {event.account}: FAILED at {where}: {event.error}", style="red")
            elif isinstance(event, Wait) and self._live is None and self._long(event):
                self._above(f"  waiting: {event.describe(self.tally.clock())}", style="dim")

    def _long(self, wait: Wait) -> bool:
        return not wait.at_most and wait.until - self.tally.clock() >= WAIT_LINE_FROM

    def _above(self, line: str, *, style: str) -> None:
        """A line above the live area (or just a line, before it starts)."""
        self.console.print(Text(self.redact(line), style=style))

    def _start(self) -> None:
        if self._live is None:
            self._live = Live(
                console=self.console,
                get_renderable=self._render,
                refresh_per_second=self._refresh,
                transient=True,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._live.start()

    def _stop(self) -> None:
        with self._lock:
            live, self._live = self._live, None
        if live is not None:  # the lock is free again: the refresh thread can finish
            live.stop()

    def _render(self) -> RenderableType:
        with self._lock:
            t = self.tally
            head = Text.assemble(
                ("Applying: ", "bold"),
                (f"{len(t.done)} of {t.accounts_total} account(s) done", "green"),
                ", ",
                (f"{len(t.failed)} failed", "red" if t.failed else ""),
                f", {t.accounts_left} left",
            )
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                Text(f"steps {t.steps_done} of {t.steps_total}"),
                ProgressBar(total=max(1, t.steps_total), completed=t.steps_done, width=30),
                Text(t.timing(), style="cyan"),
            )
            rows: list[RenderableType] = [head, bar]
            waiting = t.waiting()
            for text in waiting[:_WAITS_SHOWN]:
                rows.append(Text(self.redact(f"  waiting: {text}"), style="yellow"))
            if len(waiting) > _WAITS_SHOWN:
                rows.append(Text(f"  (+{len(waiting) - _WAITS_SHOWN} more waiting)", style="dim"))
            running = sorted(t.running.items())
            for name, summary in running[:_RUNNING_SHOWN]:
                rows.append(Text(self.redact(f"  {name}: {summary} ..."), style="dim"))
            if len(running) > _RUNNING_SHOWN:
                rows.append(Text(f"  (+{len(running) - _RUNNING_SHOWN} more running)", style="dim"))
            return Group(*rows)

    def _summary(self, finished: Finished) -> None:
        """A table of every account, its transactions in full below it (to look them up by
        hash), then the summary line."""
        failed = finished.failed
        table = Table(title=f"Apply: {finished.steps_done} step(s) done, {len(failed)} failed")
        columns = ["account", "result", "steps done", "skipped", "transactions"]
        for column in columns + (["error"] if failed else []):
            table.add_column(column, overflow="fold")
        for res in finished.results:
            result = (
                Text(f"FAILED at {res.failed}", style="red")
                if res.failed
                else Text("done", style="green")
            )
            row: list[str | Text] = [
                Text(res.name),
                result,
                str(len(res.done)),
                str(len(res.skipped)),
                str(len(res.tx_hashes)),
            ]
            if failed:  # a Text: an error's brackets are its words, not markup
                row.append(Text(self.redact(res.error or "")))
            table.add_row(*row)
        render = Console(
            file=io.StringIO(),
            force_terminal=self.color,
            no_color=not self.color,
            width=self.console.width,
            highlight=False,
        )
        with render.capture() as captured:
            render.print(table)
        self.lines.out(self._redact_rendered(captured.get()))
        for res in finished.results:
            for tx in res.tx_hashes:
                self.lines.out(self.redact(f"  {res.name}: transaction {tx}"))
        self.lines.out(apply_summary_line(finished))
        if failed:
            self.lines.err(self.redact(failure_line(finished)))
