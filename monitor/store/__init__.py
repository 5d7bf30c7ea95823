"""History that survives restarts: SQLite, written off the probing path.

`HistoryStore` is the engine's sink and the read API; `history_location`
says where a config's database lives. See DESIGN.md (store/) and README.md
(History).
"""

from monitor.store.connect import HistoryError
from monitor.store.history import HistoryRefused, HistoryStore
from monitor.store.location import history_location
from monitor.store.writer import Health, Retention

__all__ = ["Health", "HistoryError", "HistoryRefused", "HistoryStore", "Retention",
           "history_location"]
