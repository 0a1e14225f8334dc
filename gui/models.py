"""Qt item models over search results (no search logic here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from core.search import Hit

Index = QModelIndex | QPersistentModelIndex


class _RowsModel(QAbstractTableModel):
    """A read-only table over a list of rows, swapped whole with begin/endResetModel."""

    HEADERS: tuple[str, ...] = ()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list = []

    def _set(self, rows: Sequence) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def _valid(self, index: Index) -> bool:
        return (
            index.isValid() and 0 <= index.row() < len(self._rows) and 0 <= index.column() < len(self.HEADERS)
        )

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section] if 0 <= section < len(self.HEADERS) else None
        return None


class ResultsModel(_RowsModel):
    """Concepts found for the current query: code, Korean, English, matched synonym, score."""

    HEADERS = ("Code", "Korean", "English", "Matched synonym", "Score")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.starred: set[str] = set()  # favourite codes, marked ★

    def set_hits(self, hits: Sequence[Hit]) -> None:
        self._set(hits)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows by a column (clicking a header); Score sorts numerically."""
        keys = (
            lambda h: h.code,
            lambda h: h.name_ko,
            lambda h: h.name_en,
            lambda h: h.matched.lower(),
            lambda h: h.score,
        )
        if not 0 <= column < len(keys):
            return
        self.layoutAboutToBeChanged.emit()
        self._rows.sort(key=keys[column], reverse=order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()

    def hit(self, row: int) -> Hit | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        hit = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            score = f"{hit.score:.3f}" + (f" {hit.level}" if hit.level else "")
            code = ("★ " if hit.code in self.starred else "") + hit.code + (" ▸" if hit.children else "")
            return (code, hit.name_ko, hit.name_en, hit.matched, score)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            more = (
                f"\n{len(hit.children)} more specific codes below: code to the most specific level"
                if hit.children
                else ""
            )
            confidence = (
                f"\nconfidence {hit.confidence:.2f} ({hit.level})" if hit.confidence is not None else ""
            )
            return f"{hit.code}  {hit.name_ko} / {hit.name_en}\nmatched ({hit.match}): {hit.matched}{confidence}{more}"
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class BatchModel(_RowsModel):
    """Rows of a batch mapping: the input term and its best concepts."""

    HEADERS = ("Term", "Code", "Korean", "English", "Score", "Alternatives")

    def set_rows(self, rows: Sequence[tuple[str, list[Hit]]]) -> None:
        self._set(rows)

    def rows(self) -> list[tuple[str, list[Hit]]]:
        return list(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not self._valid(index):
            return None
        term, hits = self._rows[index.row()]
        if index.column() == 0:
            return term
        if not hits:
            return ""
        best, alternatives = hits[0], ", ".join(h.code for h in hits[1:])
        score = f"{best.score:.3f}" + (
            " no good match" if best.level == "none" else f" {best.level}" if best.level else ""
        )
        return (best.code, best.name_ko, best.name_en, score, alternatives)[index.column() - 1]
