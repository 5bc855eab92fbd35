"""The signing primitives: Ed25519 against RFC 8032's test vectors, canonical JSON against RFC
8785's, and the DCI signature field built and checked from them."""

import base64
import json

import pytest

from interop.dci import ed25519
from interop.dci.canonical import NotCanonicalisable, canonical_json
from interop.dci.signatures import (
    SignatureProblem,
    check_signature,
    decode_public_key,
    parse_signature,
    sign_envelope,
    signed_content,
)

# RFC 8032 section 7.1, tests 1 to 3: (secret key, public key, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize("secret, public, message, signature", RFC8032)
def test_ed25519_gives_the_rfc_8032_keys_and_signatures(secret, public, message, signature):
    secret, public, message, signature = map(bytes.fromhex, (secret, public, message, signature))

    assert ed25519.public_key(secret) == public
    assert ed25519.sign(secret, message) == signature
    assert ed25519.verify(public, message, signature)
    assert not ed25519.verify(public, message + b"!", signature)
    assert not ed25519.verify(public, message, signature[:-1] + bytes([signature[-1] ^ 1]))


def test_ed25519_refuses_a_signature_whose_scalar_is_not_reduced():
    secret, public, message, signature = map(bytes.fromhex, RFC8032[0])
    group_order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(signature[32:], "little") + group_order  # the same point, a malleated encoding
    assert not ed25519.verify(public, message, signature[:32] + s.to_bytes(32, "little"))


def test_canonical_json_sorts_keys_by_utf16_and_writes_numbers_as_ecmascript_does():
    # RFC 8785 section 3.2.3's sorting example, and numbers from its appendix.
    value = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    keys = list(json.loads(canonical_json(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert canonical_json({"b": [1, 2.5, None, True], "a": {"z": "é\n", "y": 1e21}}) == (
        '{"a":{"y":1e+21,"z":"é\\n"},"b":[1,2.5,null,true]}'.encode()
    )
    numbers = [0.0, -0.0, 1.0, 1e-7, 1e-6, 333333333.3333333, 5e-324, 1.7976931348623157e308, 9007199254740993]
    assert [canonical_json(n).decode() for n in numbers] == [
        "0",
        "0",
        "1",
        "1e-7",
        "0.000001",
        "333333333.3333333",
        "5e-324",
        "1.7976931348623157e+308",
        "9007199254740992",
    ]
    with pytest.raises(NotCanonicalisable):
        canonical_json(float("nan"))


def test_a_signed_envelope_checks_and_a_changed_one_does_not():
    seed = bytes(range(32))
    header, message = {"message_id": "1", "action": "search"}, {"transaction_id": "t", "n": 1.5}
    value = sign_envelope(
        header=header, message=message, sender_id="nsr", key_id="k1", private_key=seed, now=1_800_000_000
    )
    parsed = parse_signature(value)
    public = ed25519.public_key(seed)

    assert (parsed.sender_id, parsed.key_id, parsed.created, parsed.expires) == (
        "nsr",
        "k1",
        1_800_000_000,
        1_800_003_600,
    )
    check_signature(parsed, header=header, message=message, public_key=public, now=1_800_000_100)
    # Key order and spacing do not matter: the signature covers the canonical form.
    check_signature(
        parsed, header=dict(reversed(header.items())), message=message, public_key=public, now=1_800_000_100
    )
    with pytest.raises(SignatureProblem, match="does not match"):
        check_signature(parsed, header=header, message={**message, "n": 2}, public_key=public, now=1_800_000_100)
    with pytest.raises(SignatureProblem, match="expired"):
        check_signature(parsed, header=header, message=message, public_key=public, now=1_800_010_000)
    with pytest.raises(SignatureProblem, match="future"):
        check_signature(parsed, header=header, message=message, public_key=public, now=1_799_990_000)


def test_the_specifications_example_signature_is_read_but_refused_as_a_placeholder():
    example = (
        'Signature:  namespace="dci", kidId="{sender_id}|{unique_key_id}|{algorithm}", algorithm="ed25519", '
        'created="1606970629", expires="1607030629", headers="(created) (expires) digest", '
        'signature="Base64(signing content)'
    )
    with pytest.raises(SignatureProblem) as problem:
        parse_signature(example)
    assert problem.value.code == "err.signature.invalid"
    with pytest.raises(SignatureProblem) as problem:
        parse_signature("")
    assert problem.value.code == "err.signature.missing"


def test_public_keys_are_taken_in_base64_hex_or_der():
    public = ed25519.public_key(bytes(range(32)))
    der = bytes.fromhex("302a300506032b6570032100") + public

    assert decode_public_key(base64.b64encode(public).decode()) == public
    assert decode_public_key(public.hex()) == public
    assert decode_public_key(base64.b64encode(der).decode()) == public
    pem = f"-----BEGIN PUBLIC KEY-----\n{base64.b64encode(der).decode()}\n-----END PUBLIC KEY-----\n"
    assert decode_public_key(pem) == public
    with pytest.raises(ValueError, match="32 bytes"):
        decode_public_key("not a key")


def test_what_is_signed_is_the_header_and_the_message_only():
    assert signed_content({"b": 1, "a": 2}, None) == b'{"header":{"a":2,"b":1}}'
    assert signed_content({"a": 1}, {"x": [1]}) == b'{"header":{"a":1},"message":{"x":[1]}}'


def test_the_worked_example_of_the_documentation_is_what_the_code_signs():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "interoperability.md").read_text(encoding="utf-8")
    seed = bytes(range(32))
    header = {
        "version": "1.0.0",
        "message_id": "5d1c3a5e-1f2b-4c7e-9a53-0c1d2e3f4a5b",
        "message_ts": "2026-01-01T00:00:00+00:00",
        "action": "search",
        "sender_id": "nsr.gov.zm",
        "receiver_id": "spf-single-window",
        "total_count": 1,
        "is_msg_encrypted": False,
    }
    message = {
        "transaction_id": "T-1",
        "search_request": [
            {
                "reference_id": "R-1",
                "timestamp": "2026-01-01T00:00:00+00:00",
                "search_criteria": {"query_type": "idtype-value", "query": {"type": "UIN", "value": "123456/10/1"}},
            }
        ],
    }
    field = sign_envelope(
        header=header, message=message, sender_id="nsr.gov.zm", key_id="key-2026-1", private_key=seed, now=1767225600
    )

    assert signed_content(header, message).decode() in docs
    assert field in docs
    assert base64.b64encode(ed25519.public_key(seed)).decode() in docs
