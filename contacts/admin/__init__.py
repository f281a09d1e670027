"""Staff UI for contacts, their properties, lists, suppressions and erasures: one module per admin.

Built for a million contacts: no full COUNT(*), exact or prefix searches that hit indexes,
EXISTS filters, and the page's related rows fetched in bulk.
"""

from contacts.admin import contacts, definitions, erasures, events, suppressions  # noqa: F401 - registers
