"""The RFC 9162 (Certificate Transparency) Merkle tree over a batch's credential documents.

A leaf is SHA-256(0x00 ‖ RFC 8785 canonical document), a node SHA-256(0x01 ‖ left ‖ right):
the domain separation keeps a node from passing as a leaf. Audit paths are hex strings,
leaf level first, as they appear in a credential's ``merkleProof``.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

from models.canonical_json import canonical_json

_LEAF, _NODE = b"\x00", b"\x01"  # RFC 9162 domain separation: a node never passes as a leaf


def leaf(document: dict[str, Any]) -> bytes:
    """The leaf hash of one credential document (without its proofs)."""
    return hashlib.sha256(_LEAF + canonical_json(document)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two below ``size`` (≥ 2): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 Merkle tree hash (MTH) of ``leaves``."""
    return _merkle(leaves, 0, len(leaves), None)


def root_with_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[str]]]:
    """The root of ``leaves`` and each leaf's audit path (hex, leaf level first)."""
    paths: list[list[str]] = [[] for _ in leaves]
    return _merkle(leaves, 0, len(leaves), paths), paths


def _merkle(leaves: Sequence[bytes], start: int, stop: int, paths: list[list[str]] | None) -> bytes:
    """RFC 9162 MTH of leaves[start:stop]; appends each leaf's audit path (hex, leaf level
    first) to ``paths`` when given."""
    if stop - start == 1:
        return leaves[start]
    middle = start + _split(stop - start)
    left = _merkle(leaves, start, middle, paths)
    right = _merkle(leaves, middle, stop, paths)
    if paths is not None:
        right_hex, left_hex = right.hex(), left.hex()
        for index in range(start, middle):
            paths[index].append(right_hex)
        for index in range(middle, stop):
            paths[index].append(left_hex)
    return _node(left, right)


def root_from_proof(merkle: object, leaf_hash: bytes) -> tuple[int, bytes | None]:
    """(tree size, root) from a proof's merkleProof and the document's leaf hash (RFC 9162
    §2.1.3.2); root None if the merkleProof is malformed."""
    if not isinstance(merkle, dict):
        return 0, None
    size, index, path = merkle.get("size"), merkle.get("index"), merkle.get("path")
    if (
        not isinstance(size, int)
        or not isinstance(index, int)
        or not isinstance(path, list)
        or not 0 <= index < size
    ):
        return 0, None
    try:
        hashes = [bytes.fromhex(item) for item in path]
    except (TypeError, ValueError):
        return size, None
    return size, _root_from_path(leaf_hash, index, size, hashes)


def _root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    position, last, result = index, size - 1, leaf
    for sibling in path:
        if last == 0 or len(sibling) != 32:
            return None
        if position & 1 or position == last:
            result = _node(sibling, result)
            while not position & 1 and position:
                position, last = position >> 1, last >> 1
        else:
            result = _node(result, sibling)
        position, last = position >> 1, last >> 1
    return result if last == 0 else None
