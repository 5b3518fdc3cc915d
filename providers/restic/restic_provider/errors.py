"""gRPC failures with a google.rpc.ErrorInfo in grpc-status-details-bin (protos/README.md "Errors").

Debian has no python3 package with google/rpc/status.proto, so the two small messages are encoded by hand here:
Status{1: int32 code, 2: string message, 3: repeated Any details}, Any{1: type_url, 2: value},
ErrorInfo{1: reason, 2: domain}.
"""

import functools
import inspect
import logging

import grpc

log = logging.getLogger("rpc")

DOMAIN = "backup.provider.v1"


# The one status code of each ErrorReason, as in protos/README.md "General errors" (and ProviderErrors.StatusOf in the C#
# SDK): a host may act on the reason alone, so the code never contradicts it.
REASON_STATUS = {
    "ARCHIVE_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNKNOWN_OPERATION": grpc.StatusCode.NOT_FOUND,
    "MECHANISM_NOT_SUPPORTED": grpc.StatusCode.FAILED_PRECONDITION,
    "BACKUP_PROTECTED": grpc.StatusCode.FAILED_PRECONDITION,
    "SIZE_MISMATCH": grpc.StatusCode.FAILED_PRECONDITION,
    "OPERATION_IN_PROGRESS": grpc.StatusCode.FAILED_PRECONDITION,
    "FD_TRANSFER_UNKNOWN": grpc.StatusCode.INVALID_ARGUMENT,
    "FD_TRANSFER_REJECTED": grpc.StatusCode.INVALID_ARGUMENT,
    "FD_TRANSFER_EXPIRED": grpc.StatusCode.INVALID_ARGUMENT,
    "FD_ALREADY_CLAIMED": grpc.StatusCode.INVALID_ARGUMENT,
    "FD_KIND_MISMATCH": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_ARCHIVE_NAME": grpc.StatusCode.INVALID_ARGUMENT,
    "REPOSITORY_LOCKED": grpc.StatusCode.ABORTED,
    "SNAPSHOT_BROKEN": grpc.StatusCode.ABORTED,
    "REPOSITORY_UNREACHABLE": grpc.StatusCode.UNAVAILABLE,
    "NOT_READY": grpc.StatusCode.UNAVAILABLE,
    "AUTHENTICATION_FAILED": grpc.StatusCode.UNAUTHENTICATED,
    "QUOTA_EXCEEDED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ARCHIVE_CORRUPT": grpc.StatusCode.DATA_LOSS,
}


class ProviderError(Exception):
    """A failure the service turns into a gRPC status; reason is an ErrorReason name without its prefix, or None.
    With a reason, the code is the reason's one code (REASON_STATUS), whatever the caller passed."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str | None = None):
        super().__init__(message)
        self.code = REASON_STATUS.get(reason, code) if reason else code
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


def _internal(context, method: str, e: Exception):
    # grpcio's context.abort() raises a bare Exception(); let it through untouched.
    if type(e) is Exception and not e.args:
        raise e
    log.exception("%s failed", method)
    abort(context, ProviderError(grpc.StatusCode.INTERNAL, f"{method}: {type(e).__name__}: {e}"))


def guarded(servicer):
    """Wraps every RPC method of a servicer so a ProviderError becomes its status and any other exception (a bug)
    becomes INTERNAL with its text, instead of grpcio's opaque UNKNOWN."""
    for name, fn in inspect.getmembers(type(servicer), inspect.isfunction):
        if not name[:1].isupper():
            continue
        bound = getattr(servicer, name)
        if inspect.isgeneratorfunction(fn):
            def wrapper(request, context, _bound=bound, _name=name):
                try:
                    yield from _bound(request, context)
                except ProviderError as e:
                    abort(context, e)
                except Exception as e:
                    _internal(context, _name, e)
        else:
            def wrapper(request, context, _bound=bound, _name=name):
                try:
                    return _bound(request, context)
                except ProviderError as e:
                    abort(context, e)
                except Exception as e:
                    _internal(context, _name, e)
        setattr(servicer, name, functools.wraps(fn)(wrapper))
    return servicer
