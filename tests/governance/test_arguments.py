"""Tool arguments: the JSON Schema agents see and validation of what they or approvers send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pytest
from pydantic import BaseModel

import legato
from legato.errors import ConfigurationError, LegatoError
from legato.governance import InvalidArguments, json_schema_for, validate_args


class Order(BaseModel):
    amount: float
    currency: Literal["EUR", "USD"] = "EUR"


@dataclass
class Recipient:
    email: str
    name: str | None = None


def send_email(
    ctx: legato.Context,
    to: Recipient,
    subject: str,
    priority: Literal["low", "normal", "high"] = "normal",
    cc: list[str] | None = None,
    retries: int = 3,
) -> None:
    """Send an email."""


def refund(order: Order, reason: str | None = None) -> None: ...


def test_the_schema_of_a_tool() -> None:
    schema = json_schema_for(send_email)
    assert schema["type"] == "object"
    assert list(schema["properties"]) == ["to", "subject", "priority", "cc", "retries"]
    assert schema["required"] == ["to", "subject"]
    props = schema["properties"]
    assert props["subject"]["type"] == "string"
    assert props["priority"]["enum"] == ["low", "normal", "high"]
    assert props["priority"]["default"] == "normal"
    assert props["retries"] == {"default": 3, "title": "Retries", "type": "integer"}
    assert props["cc"]["default"] is None
    assert {"type": "null"} in props["cc"]["anyOf"]
    recipient = schema["$defs"]["Recipient"]
    assert recipient["required"] == ["email"]
    assert props["to"] == {"$ref": "#/$defs/Recipient"}


def test_the_schema_of_a_pydantic_model_parameter() -> None:
    schema = json_schema_for(refund)
    assert schema["required"] == ["order"]
    order = schema["$defs"]["Order"]
    assert order["properties"]["amount"]["type"] == "number"
    assert order["properties"]["currency"]["enum"] == ["EUR", "USD"]


def test_self_and_the_context_are_not_arguments() -> None:
    class Mailer:
        def send(self, to: str) -> None: ...

    def by_annotation(context: legato.Context, to: str) -> None: ...

    assert list(json_schema_for(Mailer().send)["properties"]) == ["to"]
    assert list(json_schema_for(Mailer.send)["properties"]) == ["to"]
    assert list(json_schema_for(by_annotation)["properties"]) == ["to"]


def test_parameter_names_that_pydantic_itself_uses_are_fine() -> None:
    def export(json: str, copy: bool = False, schema: str = "public") -> None: ...

    assert list(json_schema_for(export)["properties"]) == ["json", "copy", "schema"]
    assert validate_args(export, {"json": "{}", "copy": True}) == {
        "json": "{}",
        "copy": True,
        "schema": "public",
    }


def test_validation_coerces_and_fills_defaults() -> None:
    args = validate_args(
        send_email, {"to": {"email": "a@example.com"}, "subject": "Hi", "retries": "5"}
    )
    assert args == {
        "to": Recipient(email="a@example.com"),
        "subject": "Hi",
        "priority": "normal",
        "cc": None,
        "retries": 5,
    }
    assert isinstance(args["to"], Recipient)
    order = validate_args(refund, {"order": {"amount": "12.5"}})["order"]
    assert order == Order(amount=12.5, currency="EUR")


def test_validated_instances_pass_through() -> None:
    order = Order(amount=1.0, currency="USD")
    assert validate_args(refund, {"order": order, "reason": "late"}) == {
        "order": order,
        "reason": "late",
    }


def invalid(fn: Any, args: Any) -> InvalidArguments:
    with pytest.raises(InvalidArguments) as caught:
        validate_args(fn, args)
    return caught.value


def test_errors_name_the_tool_and_each_field() -> None:
    error = invalid(send_email, {"to": {"name": "A"}, "priority": "urgent", "bcc": "x"})
    assert error.code == "invalid_arguments" and isinstance(error, LegatoError)
    assert error.tool == "send_email"
    fields = dict(error.problems)
    assert set(fields) == {"to.email", "subject", "priority", "bcc"}
    assert fields["to.email"] == "Field required"
    assert fields["bcc"] == "unknown argument"
    assert "'low', 'normal' or 'high'" in fields["priority"]
    assert str(error).startswith("invalid arguments for tool 'send_email': ")
    assert "priority: Input should be 'low', 'normal' or 'high'" in str(error)


def test_nested_model_errors_name_the_path() -> None:
    error = invalid(refund, {"order": {"amount": "lots", "currency": "GBP"}})
    assert [field for field, _ in error.problems] == ["order.amount", "order.currency"]
    assert error.tool == "refund"
    with pytest.raises(InvalidArguments, match=r"^invalid arguments for tool 'billing\.refund': "):
        validate_args(refund, {}, tool="billing.refund")


def test_arguments_must_be_a_mapping() -> None:
    error = invalid(refund, ["order"])
    assert error.problems == [("(arguments)", "expected a mapping, got ['order']")]


def test_kwargs_accepts_extra_arguments() -> None:
    def notify(channel: str, **fields: Any) -> None: ...

    assert validate_args(notify, {"channel": "ops", "level": 3}) == {"channel": "ops", "level": 3}


def test_unannotated_parameters_accept_anything() -> None:
    def loose(value, flag=False):  # type: ignore[no-untyped-def]
        ...

    assert validate_args(loose, {"value": {"any": [1]}}) == {"value": {"any": [1]}, "flag": False}


@pytest.mark.parametrize("signature", ["positional_only", "var_positional"])
def test_parameters_that_cannot_be_named_are_refused(signature: str) -> None:
    def positional_only(a: int, /) -> None: ...

    def var_positional(*items: int) -> None: ...

    fn = positional_only if signature == "positional_only" else var_positional
    with pytest.raises(ConfigurationError, match="cannot be passed by name"):
        json_schema_for(fn)
