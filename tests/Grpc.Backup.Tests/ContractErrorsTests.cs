using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;

namespace Grpc.Backup.Tests;

/// <summary>The SDK's named failures carry the contract's reason with that reason's one status code.</summary>
public sealed class ContractErrorsTests
{
    [Fact]
    public void Each_named_failure_has_its_reason_and_code()
    {
        (RpcException Error, ErrorReason? Reason, StatusCode Code)[] cases =
        [
            (ContractErrors.InvalidArgument("x"), null, StatusCode.InvalidArgument),
            (ContractErrors.ArchiveNotFound("a"), ErrorReason.ArchiveNotFound, StatusCode.NotFound),
            (ContractErrors.UnknownBackup("b"), ErrorReason.UnknownOperation, StatusCode.NotFound),
            (ContractErrors.UnknownRestore("r"), ErrorReason.UnknownOperation, StatusCode.NotFound),
            (ContractErrors.ArchiveCorrupt("a", "why"), ErrorReason.ArchiveCorrupt, StatusCode.DataLoss),
            (ContractErrors.RepositoryLocked("busy"), ErrorReason.RepositoryLocked, StatusCode.Aborted),
        ];
        Assert.All(cases, c =>
        {
            Assert.Equal(c.Code, c.Error.StatusCode);
            Assert.Equal(c.Reason, c.Error.GetReason());
        });
    }

    [Fact]
    public void A_full_file_system_is_QUOTA_EXCEEDED_and_any_other_failure_REPOSITORY_UNREACHABLE()
    {
        var full = new IOException("No space left on device", 28);
        var gone = new IOException("Transport endpoint is not connected", 107);

        RpcException fullError = ContractErrors.FromStorage(full, "writing");
        RpcException goneError = ContractErrors.FromStorage(gone, "writing");

        Assert.Equal(ErrorReason.QuotaExceeded, fullError.GetReason());
        Assert.Equal(StatusCode.ResourceExhausted, fullError.StatusCode);
        Assert.Equal(ErrorReason.RepositoryUnreachable, goneError.GetReason());
        Assert.Equal(StatusCode.Unavailable, goneError.StatusCode);
        Assert.True(ContractErrors.IsStorageFailure(full));
        Assert.True(ContractErrors.IsStorageFailure(new UnauthorizedAccessException()));
        Assert.False(ContractErrors.IsStorageFailure(new InvalidOperationException()));
    }
}
