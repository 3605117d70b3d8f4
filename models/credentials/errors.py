"""What goes wrong with a key, a batch or a credential: one family of errors, with the reason."""


class CredentialError(ValueError):
    """Base class: a key, batch or credential that cannot be used, with the reason."""


class SignatureError(CredentialError):
    """A batch signature that is missing, not allowed, or does not verify."""


class VoidSignatureError(SignatureError):
    """A signature over an earlier version of the batch (an entry changed after signing)."""
