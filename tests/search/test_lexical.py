"""Sparse lexical vectors: tokens for identifiers, paths and codes; stable ids; BM25 weights."""

from __future__ import annotations

from kontex.services import lexical


def test_identifiers_paths_and_codes_are_tokens_whole_and_in_parts() -> None:
    found = lexical.tokens("Fix parse_jwt_claims in src/auth/jwt.py (MongoError E11000)")
    for token in ("parse_jwt_claims", "parse", "jwt", "claims", "src/auth/jwt.py", "auth"):
        assert token in found
    assert "e11000" in found and "mongoerror" in found and "mongo" in found
    assert "parsejwtclaims" in lexical.tokens("parseJwtClaims") and "jwt" in lexical.tokens(
        "parseJwtClaims"
    )
    assert "the" not in lexical.tokens("the token")


def test_token_ids_do_not_depend_on_the_process() -> None:
    # BLAKE2b, not Python's salted hash(): these values hold in every process and version
    # (points already stored depend on them: changing the hash needs `kontex reindex`)
    assert lexical.token_id("e11000") == 0xD454432C
    assert lexical.token_id("parse_jwt_claims") == 0xD0B218A6
    vector = lexical.document_vector("retry retry retry once")
    weights = dict(zip(vector.indices, vector.values, strict=True))
    assert weights[lexical.token_id("retry")] > weights[lexical.token_id("once")]
    assert vector.indices == sorted(vector.indices)
    assert lexical.query_vector("retry once").values == [1.0, 1.0]
