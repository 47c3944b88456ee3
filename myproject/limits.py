"""
Sizes that are facts of the stack rather than settings, shared by the apps and the parsers.

MySQL takes a statement whole, up to `max_allowed_packet` (16 MiB by default on MariaDB, the
smallest default): a longer one fails as if the database had gone away. So free text is
bounded by the models themselves (every write path validates against them), and no string of
a request body may be longer than the longest field takes (`myproject.parsers`).
"""

# Characters in a free-text field (a user's comment, an item's description): up to 256 KiB
# of UTF-8, so a row always fits a statement.
TEXT_MAX_LENGTH = 65_535

# Levels of nesting in a JSON body: no endpoint takes more than three; Python's decoder fails
# (RecursionError) around a thousand.
JSON_MAX_DEPTH = 32
