"""Modules that other packages import but coach may never use: a stand-in is put in
sys.modules, and the real module is loaded the first time anything reads from it.

importlib.util.LazyLoader does not help here: on Python 3.11 the import statement itself
reads the module's __spec__, which makes it load at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable


def load_on_first_use(name: str, after_load: Callable[[types.ModuleType], None] | None = None) -> None:
    """Put a stand-in for the module `name` in sys.modules (unless it is loaded already), and
    on its parent package, as an import statement would; `after_load(module)` runs once the
    real module has been loaded by a first use."""
    if name in sys.modules:
        return
    parent, _, child = name.rpartition(".")
    stand_in = _ModuleOnFirstUse(name, after_load)
    sys.modules[name] = stand_in
    if parent:
        setattr(importlib.import_module(parent), child, stand_in)


class _ModuleOnFirstUse(types.ModuleType):
    """The import statement finds this in sys.modules and reads only what is set here; any
    other attribute loads the real module, which then takes this one's place in sys.modules
    and on its package, and answers from then on."""

    def __init__(self, name: str, after_load: Callable[[types.ModuleType], None] | None) -> None:
        super().__init__(name)
        self.__spec__ = importlib.util.find_spec(name)  # what the import statement reads
        self._after_load = after_load

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # copy, pickle and friends asking what this is
            raise AttributeError(attribute)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            if self._after_load is not None:
                self._after_load(real)
        else:
            real = importlib.import_module(self.__name__)
        return getattr(real, attribute)
