"""Errors of the simulated lab, each naming the module and carrying its JSON-RPC code.

The codes are the daemon's application error codes (ARCHITECTURE.md contract A), so the daemon can
map a SimLabError to its reply with ``error.code``, ``str(error)`` and ``{"module": error.module}``.
"""

from __future__ import annotations


class SimLabError(Exception):
    """Base class: ``module`` is the module id ("SP1", "H1", ...), ``code`` the JSON-RPC code."""

    code = -32000

    def __init__(self, module: str, message: str) -> None:
        super().__init__(f"{module}: {message}")
        self.module = module
        self.message = message


class LimitError(SimLabError):
    """A value outside the module's limits (volume, rate, setpoint, position, ...)."""

    code = -32001


class BusyError(SimLabError):
    """The module is still executing a previous command."""

    code = -32002


class OfflineError(SimLabError):
    """The module is not connected (fault injection)."""

    code = -32003


class FaultError(SimLabError):
    """The module is in a latched fault (over-temperature trip, emergency stop)."""

    code = -32004


class UnknownModuleError(SimLabError):
    """No module of that id (or no such reagent bottle / valve) in this lab."""

    code = -32005


class ReagentError(SimLabError):
    """Not enough reagent: empty syringe, over-filled syringe, empty stock bottle, wrong reagent."""

    code = -32006


class NotReadyError(SimLabError):
    """The operation needs a state the lab is not in (no sample in the cuvette, arm not there)."""

    code = -32007
