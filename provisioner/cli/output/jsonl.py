"""``plan --json`` / ``apply --json``: one JSON object per line on stdout, in the manner of
Terraform's machine-readable UI (schema: provisioner/schemas/events.schema.json).

Every object has ``@level``, ``@message``, ``@timestamp`` and ``type``; step events add
``account`` and ``step``. Every string passes the run's redactor before it is encoded.
Nothing else goes to stdout; errors are also told on stderr as usual.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from provisioner import __version__
from provisioner.apply.events import (
    Event,
    Finished,
    PlanReady,
    StepDone,
    StepFailed,
    StepStarted,
)
from provisioner.cli.output.lines import Lines
from provisioner.cli.output.notices import notice
from provisioner.cli.output.plain import apply_summary_line, done_line
from provisioner.plan.model import Plan, Step
from provisioner.plan.render import summary_line
from provisioner.redact import Redactor
from provisioner.waits import Wait

UI_VERSION = "1.0"


def _now() -> datetime:
    return datetime.now(UTC)


class JsonReporter:
    def __init__(
        self,
        redactor: Redactor,
        lines: Lines,
        *,
        operation: str = "apply",
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.redact = redactor.redact
        self.lines = lines
        self.operation = operation
        self.now = now
        self._lock = threading.Lock()

    def __enter__(self) -> JsonReporter:
        self.emit(
            "version",
            f"provision {__version__}",
            provision=__version__,
            ui=UI_VERSION,
            operation=self.operation,
        )
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        return None

    def emit(self, kind: str, message: str, *, level: str = "info", **fields: Any) -> None:
        document = {
            "@level": level,
            "@message": message,
            "@timestamp": self.now().isoformat(timespec="microseconds"),
            "type": kind,
            **fields,
        }
        line = json.dumps(self._redacted(document), separators=(",", ":"), sort_keys=False)
        with self._lock:
            self.lines.out(line)

    def _redacted(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._redacted(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redacted(v) for v in value]
        return value

    def diagnostic(self, message: str) -> None:
        self.emit("diagnostic", f"error: {message}", level="error", summary=message)

    def __call__(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            self.plan(event.plan)
        elif (said := notice(event)) is not None:
            about = {"account": said.account} if said.account else {}
            self.emit("note", said.message, level=said.level, **about)
        elif isinstance(event, StepStarted):
            s = event.step
            self.emit("step_start", f"{s.account}: {s.summary} ...", **_step_fields(s))
        elif isinstance(event, StepDone):
            s = event.step
            self.emit(
                "step_complete",
                f"{s.account}: {done_line(event)}",
                **_step_fields(s),
                changed=event.outcome.changed,
                outcome=event.outcome.text,
            )
        elif isinstance(event, StepFailed):
            fields: dict[str, Any] = {"account": event.account, "error": event.error}
            if event.step is not None:
                fields = {**_step_fields(event.step), "error": event.error}
            where = event.step.id if event.step else "journal"
            self.emit(
                "step_errored",
                f"{event.account}: FAILED at {where}: {event.error}",
                level="error",
                **fields,
            )
        elif isinstance(event, Wait):
            now = self.now().timestamp()
            over = event.until <= now  # told again once over
            until = datetime.fromtimestamp(max(event.until, now), UTC)
            fields = {
                "what": event.what,
                "until": until.isoformat(timespec="milliseconds"),
                "seconds": round(max(0.0, event.until - now), 1),
                "over": over,
                "at_most": event.at_most,
            }
            if event.account:
                fields["account"] = event.account
            message = f"wait over: {event.what}" if over else f"waiting: {event.describe(now)}"
            self.emit("wait", message, **fields)
        elif isinstance(event, Finished):
            self.finished(event)

    def plan(self, plan: Plan) -> None:
        for acc in plan.accounts:
            for step in acc.steps:
                self.emit(
                    "planned_step",
                    f"{acc.name}: {step.symbol} {step.summary}",
                    level="warn" if step.blocked else "info",
                    **_step_fields(step),
                    reason=step.reason,
                    blocked=step.blocked,
                )
            for note in acc.notes:
                self.emit(
                    "note",
                    f"{acc.name}: {note.level}: {note.message}",
                    level="warn" if note.level in ("warning", "drift") else "info",
                    account=acc.name,
                    note_level=note.level,
                )
        s = plan.summary()
        self.emit(
            "plan_summary",
            summary_line(s) if s.has_changes else "No changes. Every account matches the manifest.",
            changes={
                "add": s.add,
                "change": s.change,
                "destroy": s.destroy,
                "blocked": s.blocked,
                "accounts": len(plan.accounts),
                "up_to_date": sum(1 for a in plan.accounts if a.converged),
                "operation": "plan",
            },
            network=plan.network,
            chain_id=plan.chain_id,
            fingerprint=plan.fingerprint,
        )

    def finished(self, finished: Finished) -> None:
        failed = finished.failed
        self.emit(
            "apply_summary",
            apply_summary_line(finished),
            level="error" if failed else "info",
            changes={
                "steps_done": finished.steps_done,
                "steps_unchanged": finished.steps_unchanged,
                "accounts": len(finished.results),
                "failed": len(failed),
                "busy": finished.busy,
                "operation": "apply",
            },
            accounts=[
                {
                    "name": r.name,
                    "done": list(r.done),
                    "unchanged": list(r.unchanged),
                    "skipped": list(r.skipped),
                    "failed": r.failed,
                    "error": r.error,
                    "transactions": list(r.tx_hashes),
                }
                for r in finished.results
            ],
        )


def _step_fields(step: Step) -> dict[str, Any]:
    return {
        "account": step.account,
        "step": {
            "id": step.id,
            "kind": step.kind.value,
            "action": step.action.value,
            "summary": step.summary,
        },
    }
