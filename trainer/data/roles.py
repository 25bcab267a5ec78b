"""The roles a user's columns play, and the file that maps them (`trainer.data.mapping`).

Kept apart from the mapping's code, which reads data, so that the command line can list
the roles without importing pandas.
"""

from __future__ import annotations

#: Role -> the canonical column it becomes.
ROLES: dict[str, str] = {
    "transaction_id": "TRANSACTION_ID",
    "timestamp": "TX_DATETIME",
    "card": "CUSTOMER_ID",
    "terminal": "TERMINAL_ID",
    "amount": "TX_AMOUNT",
    "label": "TX_FRAUD",
}
#: The roles every file must have; without ``label`` a day is unlabelled.
REQUIRED_ROLES = ("transaction_id", "timestamp", "card", "terminal", "amount")
#: The mapping file a share may hold at its root.
MAPPING_FILE_NAME = "fraudpipe-mapping.json"
