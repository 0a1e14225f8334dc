"""Qt item models over search results (no search logic here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from core.mapping import Row
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


class MappingRowsModel(_RowsModel):
    """Rows of a mapping project: the source term, its frequency, the decision and the
    target (or the top suggestion while unchecked)."""

    HEADERS = ("#", "Term", "Freq.", "Status", "Code", "Name", "Confidence")
    STATUS_MARKS = {
        "unchecked": "·",
        "approved": "✔ approved",
        "flagged": "⚑ flagged",
        "ignored": "✗ ignored",
    }

    def set_rows(self, rows: Sequence[Row]) -> None:
        self._set(rows)
        self._positions = {row.id: i for i, row in enumerate(self._rows)}

    def row(self, position: int) -> Row | None:
        return self._rows[position] if 0 <= position < len(self._rows) else None

    def position(self, row_id: int) -> int | None:
        return self._positions.get(row_id)

    def replace(self, position: int | None, row: Row) -> None:
        if position is None or not 0 <= position < len(self._rows):
            return
        self._rows[position] = row
        self.dataChanged.emit(self.index(position, 0), self.index(position, len(self.HEADERS) - 1))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._valid(index):
            return None
        row: Row = self._rows[index.row()]
        top = row.top
        if role == Qt.ItemDataRole.DisplayRole:
            if row.targets:
                code, name = " | ".join(row.targets), ""
                if top is not None and row.targets == (top.code,):
                    name = top.name_ko or top.name_en
            elif top is not None:
                code, name = top.code, top.name_ko or top.name_en
            else:
                code, name = "", "(no suggestion)" if row.term else "(empty term)"
            if top is None or top.confidence is None:
                confidence = ""
            else:
                confidence = "no good match" if top.level == "none" else f"{top.level} {top.confidence:.2f}"
            status = self.STATUS_MARKS[row.status]
            return (str(row.id), row.term, str(row.frequency or ""), status, code, name, confidence)[
                index.column()
            ]
        if role == Qt.ItemDataRole.ToolTipRole and row.comment:
            return row.comment
        return None
