"""Importing this package registers every kind (see base.KINDS)."""

from integrations.kinds import loops, promoter, refersion, retently, segment, segment_source  # noqa: F401
from integrations.kinds.base import KINDS, Kind, Refuse, Setting, Skip, get_kind, kind_choices  # noqa: F401
