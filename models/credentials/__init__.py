"""Two-party-signed e-certificates: Ed25519 keys, certificate batches, W3C VC 2.0 credentials.

The organiser and each school sign the school's certificate batch once, each with its own
key, usually on different machines. A party signs a *batch statement* that commits to every
certificate of the batch: the root of an RFC 9162 (Certificate Transparency) Merkle tree whose
leaves are the RFC 8785 canonical credential documents. Each issued credential then carries
both parties' signatures as two ``DataIntegrityProof`` objects (a proof set), each with the
Merkle path from its own document to the signed root, so it verifies on its own without the
rest of the batch and without revealing other candidates (every leaf holds a random salt).

Why a batch statement rather than two signatures per credential:

- issuing needs no private key: the school's key never leaves the school, and the
  certificates stage only assembles documents from stored signatures;
- a review that changes any entry changes the root, so both batch signatures are void at
  once and issuing refuses until both parties sign again;
- a verifier checking many credentials verifies each batch signature once (memoised): two
  Ed25519 verifications per credential would cap it near 3,500 credentials/s per core.

The proof follows the eddsa-jcs-2022 recipe (signature over SHA-256(canonical proof config)
‖ SHA-256(canonical statement), multibase proofValue), with the batch statement in place of the
document, hence its own cryptosuite name. Everything here is pure: times come in as arguments,
and private-key files are read and written by ``adapters.key_files``.

The modules, each imported directly (this package re-exports nothing):

- ``errors``: CredentialError, SignatureError, VoidSignatureError;
- ``keys``: parties, key ids, public keys, the registry of trusted keys;
- ``batch``: a school's batch, its entries, ID digests and the credential documents;
- ``merkle``: the RFC 9162 tree over those documents;
- ``statement``: exactly the bytes each party signs;
- ``signing``: signing a batch, checking batch signatures, issuing credentials;
- ``verification``: checking one credential on its own (CredentialVerifier);
- ``offline``: a school's signature made offline with its key file (signing request, signature);
- ``status_list``: the sitting's revocation list (W3C Bitstring Status List).
"""
