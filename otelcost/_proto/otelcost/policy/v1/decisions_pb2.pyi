from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_ALLOW: _ClassVar[Action]
    ACTION_NOTIFY: _ClassVar[Action]
    ACTION_THROTTLE: _ClassVar[Action]
    ACTION_BLOCK: _ClassVar[Action]
ACTION_UNSPECIFIED: Action
ACTION_ALLOW: Action
ACTION_NOTIFY: Action
ACTION_THROTTLE: Action
ACTION_BLOCK: Action

class ScopeTerm(_message.Message):
    __slots__ = ("dimension", "values")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    dimension: str
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dimension: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("budget", "scope", "action", "reason", "source", "metric", "spent", "limit", "threshold", "window", "window_start_unix_nano", "window_end_unix_nano", "retry_at_unix_nano", "as_of_unix_nano", "computed_at_unix_nano", "unpriced_calls", "override_id")
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SPENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    RETRY_AT_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    AS_OF_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    UNPRICED_CALLS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_ID_FIELD_NUMBER: _ClassVar[int]
    budget: str
    scope: _containers.RepeatedCompositeFieldContainer[ScopeTerm]
    action: Action
    reason: str
    source: str
    metric: str
    spent: str
    limit: str
    threshold: str
    window: str
    window_start_unix_nano: int
    window_end_unix_nano: int
    retry_at_unix_nano: int
    as_of_unix_nano: int
    computed_at_unix_nano: int
    unpriced_calls: int
    override_id: str
    def __init__(self, budget: _Optional[str] = ..., scope: _Optional[_Iterable[_Union[ScopeTerm, _Mapping]]] = ..., action: _Optional[_Union[Action, str]] = ..., reason: _Optional[str] = ..., source: _Optional[str] = ..., metric: _Optional[str] = ..., spent: _Optional[str] = ..., limit: _Optional[str] = ..., threshold: _Optional[str] = ..., window: _Optional[str] = ..., window_start_unix_nano: _Optional[int] = ..., window_end_unix_nano: _Optional[int] = ..., retry_at_unix_nano: _Optional[int] = ..., as_of_unix_nano: _Optional[int] = ..., computed_at_unix_nano: _Optional[int] = ..., unpriced_calls: _Optional[int] = ..., override_id: _Optional[str] = ...) -> None: ...

class Exemption(_message.Message):
    __slots__ = ("override_id", "scope", "budget", "until_unix_nano", "reason")
    OVERRIDE_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    UNTIL_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    override_id: str
    scope: _containers.RepeatedCompositeFieldContainer[ScopeTerm]
    budget: str
    until_unix_nano: int
    reason: str
    def __init__(self, override_id: _Optional[str] = ..., scope: _Optional[_Iterable[_Union[ScopeTerm, _Mapping]]] = ..., budget: _Optional[str] = ..., until_unix_nano: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DecisionSnapshot(_message.Message):
    __slots__ = ("version", "epoch", "computed_at_unix_nano", "as_of_unix_nano", "decisions", "exemptions", "stale")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    AS_OF_UNIX_NANO_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    EXEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    version: int
    epoch: str
    computed_at_unix_nano: int
    as_of_unix_nano: int
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    exemptions: _containers.RepeatedCompositeFieldContainer[Exemption]
    stale: bool
    def __init__(self, version: _Optional[int] = ..., epoch: _Optional[str] = ..., computed_at_unix_nano: _Optional[int] = ..., as_of_unix_nano: _Optional[int] = ..., decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., exemptions: _Optional[_Iterable[_Union[Exemption, _Mapping]]] = ..., stale: _Optional[bool] = ...) -> None: ...
