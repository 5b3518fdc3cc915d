"""gRPC failures with a google.rpc.ErrorInfo in grpc-status-details-bin (protos/README.md "Errors").

Debian has no python3 package with google/rpc/status.proto, so the two small messages are encoded by hand here:
Status{1: int32 code, 2: string message, 3: repeated Any details}, Any{1: type_url, 2: value},
ErrorInfo{1: reason, 2: domain}.
"""

import grpc

DOMAIN = "backup.provider.v1"


class ProviderError(Exception):
    """A failure the service turns into a gRPC status; reason is an ErrorReason name without its prefix, or None."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


def invalid(message: str, reason: str | None = None) -> ProviderError:
    return ProviderError(grpc.StatusCode.INVALID_ARGUMENT, message, reason)


def not_found(message: str, reason: str) -> ProviderError:
    return ProviderError(grpc.StatusCode.NOT_FOUND, message, reason)


def precondition(message: str, reason: str | None = None) -> ProviderError:
    return ProviderError(grpc.StatusCode.FAILED_PRECONDITION, message, reason)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def status_details(code: grpc.StatusCode, message: str, reason: str) -> bytes:
    """The serialized google.rpc.Status carrying one ErrorInfo."""
    info = _field(1, reason.encode()) + _field(2, DOMAIN.encode())
    any_ = _field(1, b"type.googleapis.com/google.rpc.ErrorInfo") + _field(2, info)
    numeric = code.value[0]
    return _varint(1 << 3) + _varint(numeric) + _field(2, message.encode()) + _field(3, any_)


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def abort(context: grpc.ServicerContext, error: ProviderError):
    """Ends the call with the error's status; never returns."""
    message = error.message[:4000]
    metadata = ()
    if error.reason:
        metadata = (("grpc-status-details-bin", status_details(error.code, message, error.reason)),)
    context.abort_with_status(_Status(error.code, message, metadata))
