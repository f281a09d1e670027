"""The kind registry: one small class per partner, looked up by the Integration's stored kind.

A kind declares its settings (with help text, shown in the admin and validated by
`create_integration`), the message types it applies (`handles`; the others are skipped with
the reason), and the batch it works on: `open_batch(rows)` loads what a drained chunk needs in
a few queries, each handler changes the batch in memory, and `close_batch` writes it back. A
contacts kind works on a `contacts.batch.ContactBatch`; a kind about something else (affiliates)
brings its own batch. The drain knows nothing of contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from common.outcomes import Refuse, Skip, Wait  # noqa: F401 - the kinds raise these

if TYPE_CHECKING:
    from integrations.models import InboxMessage, Integration

KINDS: dict[str, type[Kind]] = {}


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    secret: bool = False

    def parse(self, raw: Any) -> Any:
        """Coerce a value from the command line, the admin or JSON, or raise ValueError."""
        if raw is None or raw == "":
            return self.default
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(f"{self.name} must be true or false, not {raw!r}")
        if self.type is int:
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{self.name} must be a whole number, not {raw!r}") from None
            if value < 0:
                raise ValueError(f"{self.name} must not be negative")
            return value
        value = str(raw).strip()
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        return value


UNKNOWN_TRAITS = Setting(
    "unknown_traits",
    str,
    "infer",
    "What to do with a trait that has no property definition: 'infer' defines a property "
    "with the type the value suggests, 'text' defines a text property, 'raw' keeps the value "
    "unvalidated on the contact, 'ignore' drops it.",
    choices=("infer", "text", "raw", "ignore"),
)
EVENT_FILTER = Setting(
    "event_filter",
    str,
    "",
    "Comma-separated track event names this integration applies (exact match). Empty applies "
    "every event; others are marked skipped with the reason.",
)
FIXED_MAILING_LIST = Setting(
    "fixed_mailing_list",
    str,
    "",
    "A mailing list id that every identified contact is subscribed to, instead of (or as well "
    "as) the lists sent in traits.mailingLists.",
)


class KindBatch:
    """What a kind works on while the drain applies one chunk. The base holds nothing.

    `newly_known_ids`: ids (anonymousIds, userIds) this chunk tied to someone: rows waiting for
    one of them can now apply. `erased`: the chunk erased someone (the drain redacts its rows
    again after writing).
    """

    newly_known_ids: set[str]
    erased: bool = False

    def __init__(self) -> None:
        self.newly_known_ids = set()

    def flush(self) -> None:
        """Write what the handlers changed."""


class Kind:
    kind: ClassVar[str]
    label: ClassVar[str]
    inbound: ClassVar[bool] = True
    description: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    default_daily_cap: ClassVar[int | None] = None
    # The message types this kind applies; each is the method of that name. Others are
    # skipped, with the reason, by `apply`.
    handles: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            KINDS[cls.kind] = cls

    def __init__(self, integration: Integration) -> None:
        self.integration = integration
        self._event_names: set[str] | None = None

    # --- settings -----------------------------------------------------------------------
    @classmethod
    def setting(cls, name: str) -> Setting | None:
        return next((s for s in cls.settings if s.name == name), None)

    def option(self, name: str) -> Any:
        spec = self.setting(name)
        if spec is None:
            raise KeyError(name)
        return spec.parse(self.integration.settings.get(name))

    def event_names(self) -> set[str]:
        # Asked for every track of a chunk; a kind lives for one chunk, its settings with it.
        if self._event_names is None:
            raw = self.option("event_filter") if self.setting("event_filter") else ""
            self._event_names = {name.strip() for name in raw.split(",") if name.strip()}
        return self._event_names

    # --- applying -----------------------------------------------------------------------
    def open_batch(self, rows: list[InboxMessage]) -> KindBatch:
        """Load what applying `rows` needs, in a few queries."""
        return KindBatch()

    def close_batch(self, batch: KindBatch, rows: list[InboxMessage]) -> None:
        """Write the batch back, and point each row at what it finally touched."""
        batch.flush()

    def apply(self, batch: KindBatch, message: InboxMessage) -> None:
        """Apply one message; raise Skip, Wait or Refuse to end it otherwise."""
        if message.type not in self.handles:
            raise Skip(f"{self.label} does not use {message.type} calls")
        getattr(self, message.type)(batch, message)


def kind_choices() -> list[tuple[str, str]]:
    return [(name, cls.label) for name, cls in sorted(KINDS.items())]


def get_kind(name: str) -> type[Kind]:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}; choose from {', '.join(sorted(KINDS))}") from None
