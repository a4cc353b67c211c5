"""State backends behind one interface (see gateway.state.base)."""

from gateway.state.base import Script, StateStore, StoreUnavailableError
from gateway.state.memory import MemoryStore

__all__ = ["MemoryStore", "Script", "StateStore", "StoreUnavailableError"]
