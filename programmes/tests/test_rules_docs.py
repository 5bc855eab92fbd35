"""docs/rules.md tells ministry staff what they can write: every example in it
must compile, and every refusal it shows must be refused with those words."""

import re
from pathlib import Path

import pytest

from programmes.rules import RuleError, build_schema, compile_expression
from registry.models import AttributeDefinition, AttributeEntity, AttributeType

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
EXAMPLES = re.findall(r"```cel\n(.*?)```", DOC.read_text(), flags=re.S)
REFUSALS = re.findall(r"^\| `([^`]+)`(?: as a rule)? \| `([^`]+)` \|$", DOC.read_text(), flags=re.M)

SCHEMA = build_schema(
    [
        AttributeDefinition(
            entity=AttributeEntity.HOUSEHOLD, key="pmt_score", label="PMT score", type=AttributeType.DECIMAL
        ),
        AttributeDefinition(
            entity=AttributeEntity.HOUSEHOLD, key="flooded", label="Flooded", type=AttributeType.BOOLEAN
        ),
    ]
)


def test_the_documentation_has_examples_and_refusals():
    assert len(EXAMPLES) >= 10
    assert len(REFUSALS) >= 6


@pytest.mark.parametrize("text", EXAMPLES)
def test_documented_example_compiles(text):
    target = "member" if "member." in text else "household"
    kinds = ("rule", "formula")
    errors = []
    for kind in kinds:
        try:
            compile_expression(text, kind=kind, target=target, schema=SCHEMA)
            return
        except RuleError as error:
            errors.append(error)
    raise AssertionError(f"{text!r} is in the documentation but refused: {errors}")


@pytest.mark.parametrize("text, message", REFUSALS)
def test_documented_refusal_reads_as_shown(text, message):
    with pytest.raises(RuleError) as caught:
        compile_expression(text, kind="rule", schema=SCHEMA)
    assert message.replace("\\|", "|") in caught.value.messages[0]
