"""The MAOSIC instruction language: formulas, instruction codes, reaction configurations.

Public API: ``compile_formula``, ``compile_config``, ``Program``, ``load_config``,
``ReactionConfig``, ``SearchSpace``, ``formula_space`` (a formula file's own search space),
``LanguageError`` (the only error type for bad input) and
the module symbol table ``MODULES``.  See docs/language.md.
"""

from maosic.language.compiler import Program, compile_config, compile_formula
from maosic.language.config import ReactionConfig, SearchSpace, load_config
from maosic.language.errors import LanguageError
from maosic.language.header import formula_space
from maosic.language.symbols import MODULES

__all__ = [
    "MODULES",
    "LanguageError",
    "Program",
    "ReactionConfig",
    "SearchSpace",
    "compile_config",
    "compile_formula",
    "formula_space",
    "load_config",
]
