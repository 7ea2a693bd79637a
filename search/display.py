"""What a person sees during a search: a rich live table of finished trials on a terminal, one plain line
per trial otherwise, nothing with --quiet."""
from __future__ import annotations

import math
from typing import Optional

from rich.console import Console
from rich.live import Live
from rich.table import Table

from dlx.core.numbers import fmt

STATE_STYLE = {"COMPLETE": "green", "PRUNED": "yellow", "FAIL": "red"}
MAX_ROWS = 20


def describe(trial, metric: str) -> dict:
    state = trial.state.name
    value = trial.values[0] if state == "COMPLETE" and trial.values else None
    if value is None and trial.user_attrs.get("values"):  # several objectives: a pruned trial's last values
        value = trial.user_attrs["values"][0]
    if value is None and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    return {"number": trial.number, "state": state, "value": value,
            "params": ", ".join(f"{k.split('.')[-1]}={fmt(v, style='general', empty='None')}"
                                for k, v in trial.params.items()),
            "epochs": trial.user_attrs.get("epochs"), "reason": trial.user_attrs.get("fail_reason"),
            "feasible": all(v <= 0 for v in trial.constraints.values())}


class TrialDisplay:
    """Called with each finished trial; keeps the best so far."""

    def __init__(self, console: Optional[Console] = None, live: Optional[bool] = None):
        self.metric, self.direction, self.target = "value", "maximize", None
        self.console = console or Console(highlight=False)
        self.live_mode = self.console.is_terminal if live is None else live
        self.rows: list[dict] = []
        self.best: Optional[float] = None
        self.done = 0
        self._live: Optional[Live] = None

    def start(self, metric: str, direction: str, target: Optional[int], done: int = 0,
              best: Optional[float] = None, folder=None, resumed: bool = False, requeued: int = 0) -> None:
        """Called once the space and the study are known, with the trials done and the best value so far. Says
        where the search is, and whether it resumed, at once: the first trial may take hours to end."""
        self.metric, self.direction, self.target, self.done, self.best = metric, direction, target, done, best
        if folder is not None:
            self.console.print(f"search folder: {folder}", soft_wrap=True)
        if resumed:
            self.console.print(f"resumed: {done} trial{'s' * (done != 1)} done, {requeued} re-queued to run again",
                               soft_wrap=True)

    def __call__(self, trial, study=None) -> None:
        row = describe(trial, self.metric)
        if row["state"] in ("COMPLETE", "PRUNED"):
            self.done += 1
        value = row["value"]
        if row["state"] == "COMPLETE" and row["feasible"] and value is not None and math.isfinite(value):
            if self.best is None or (value > self.best if self.direction == "maximize" else value < self.best):
                self.best = row["value"]
        row["best"] = self.best
        self.rows.append(row)
        if self.live_mode:
            if self._live is None:
                self._live = Live(self._table(), console=self.console, auto_refresh=False)
                self._live.start()
            self._live.update(self._table(), refresh=True)
        else:
            self.console.print(self._line(row), soft_wrap=True)

    def _progress(self) -> str:
        return f"{self.done}/{self.target}" if self.target else str(self.done)

    def _line(self, row: dict) -> str:
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        best = "-" if row["best"] is None else f"{row['best']:.4f}"
        reason = f"  ({row['reason']})" if row["reason"] and row["state"] != "COMPLETE" else ""
        return (f"trial {row['number']:>3} [{self._progress()}] {row['state']:<8} {self.metric} {value}  best {best}  "
                f"epochs {row['epochs']}  {row['params']}{reason}")

    def _table(self) -> Table:
        table = Table(title=f"search: {self._progress()} trials, best {self.metric} "
                            f"{'-' if self.best is None else f'{self.best:.4f}'}")
        for column in ("#", "params", self.metric, "epochs", "state", "best so far"):
            table.add_column(column, overflow="fold")
        for row in self.rows[-MAX_ROWS:]:
            table.add_row(str(row["number"]), row["params"], "-" if row["value"] is None else f"{row['value']:.4f}",
                          str(row["epochs"]), f"[{STATE_STYLE.get(row['state'], '')}]{row['state']}[/]",
                          "-" if row["best"] is None else f"{row['best']:.4f}")
        return table

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
