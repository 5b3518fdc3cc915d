using Google.Protobuf.Reflection;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Core;

namespace Grpc.Backup.Tests;

public sealed class ProtocolRulesTests
{
    [Theory]
    [InlineData("100/vm-2026-11-22T10:00:00Z")]
    [InlineData("pve-qemu-100-2026.11.22+1=a_b")]
    [InlineData("a")]
    public void Valid_archive_names_are_accepted(string name) => Assert.Null(ArchiveName.Check(name));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("/etc/passwd", "starts with '/'")]
    [InlineData("a/../b", "'..' path segment")]
    [InlineData("a//b", "empty, '.' or '..'")]
    [InlineData("a/./b", "empty, '.' or '..'")]
    [InlineData("a/", "empty, '.' or '..'")]
    [InlineData("name with space", "U+0020")]
    [InlineData("new\nline", "U+000A")]
    [InlineData("ünicode", "U+00FC")]
    [InlineData("semi;colon", "U+003B")]
    public void Invalid_archive_names_are_refused_with_the_reason(string name, string reason)
    {
        string? problem = ArchiveName.Check(name);
        Assert.NotNull(problem);
        Assert.Contains(reason, problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("drive-scsi0", true)]
    [InlineData("a.b_c+d=e-f", true)]
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("..", false)]
    [InlineData("../etc", false)]
    [InlineData("sda\n", false)]
    [InlineData("s a", false)]
    [InlineData("ünicode", false)]
    public void The_one_device_name_rule(string name, bool valid) => Assert.Equal(valid, DeviceName.IsValid(name));

    [Theory]
    [InlineData("100", true)]
    [InlineData("vm.web-1_a", true)]
    [InlineData("100\n", false)]
    [InlineData("..", false)]
    [InlineData("a/b", false)]
    [InlineData("", false)]
    public void The_guest_id_rule_admits_no_trailing_newline(string id, bool valid) =>
        Assert.Equal(valid, Grpc.Backup.Provider.ProtocolNames.IsValidGuestId(id));

    [Theory]
    [InlineData("6f1c2a6e-2f1b-4c55-9c1e-0c7f5e1c9a10", true)]
    [InlineData("job:1", true)]
    [InlineData("6f1c2a6e\n", false)]
    [InlineData("a/b", false)]
    public void The_operation_id_rule_admits_no_trailing_newline(string id, bool valid) =>
        Assert.Equal(valid, Grpc.Backup.Provider.ProtocolNames.IsValidOperationId(id));

    [Fact]
    public void Device_names_are_at_most_128_characters()
    {
        Assert.True(DeviceName.IsValid(new string('a', 128)));
        Assert.False(DeviceName.IsValid(new string('a', 129)));
    }

    [Fact]
    public void Archive_names_longer_than_255_bytes_are_refused()
    {
        Assert.Null(ArchiveName.Check(new string('a', 255)));
        Assert.Contains("at most 255", ArchiveName.Check(new string('a', 256)), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_rpc_declares_its_idempotency_and_only_the_data_streams_are_not_idempotent()
    {
        var unknown = MethodIdempotency.All
            .Where(m => m.Value == MethodOptions.Types.IdempotencyLevel.IdempotencyUnknown)
            .Select(m => m.Key)
            .Order(StringComparer.Ordinal)
            .ToArray();

        Assert.Equal(["/backup.provider.v1.Backup/BackupContainer", "/backup.provider.v1.Backup/BackupVm"], unknown);
        Assert.True(MethodIdempotency.All.Count >= 25, $"only {MethodIdempotency.All.Count} methods found");
        Assert.True(MethodIdempotency.IsIdempotent("/backup.provider.v1.Backup/JobInit"));
        Assert.True(MethodIdempotency.IsIdempotent("/backup.provider.v1.Identity/GetProviderInfo"));
        Assert.False(MethodIdempotency.IsIdempotent("/backup.provider.v1.Backup/BackupVm"));
        Assert.False(MethodIdempotency.IsIdempotent("/some.other.Service/Method"));
    }

    [Fact]
    public void Error_reasons_round_trip_through_the_status_details()
    {
        RpcException error = ProviderErrors.Create(ErrorReason.ArchiveNotFound, "no archive 100/vm-1",
            new Dictionary<string, string> { ["archive"] = "100/vm-1" });

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("no archive 100/vm-1", error.Status.Detail);
        Assert.Equal(ErrorReason.ArchiveNotFound, error.GetReason(out string? raw));
        Assert.Equal("ARCHIVE_NOT_FOUND", raw);
    }

    [Fact]
    public void A_status_without_details_or_with_garbage_details_has_no_reason()
    {
        Assert.Null(new RpcException(new Status(StatusCode.Internal, "plain")).GetReason());
        var garbage = new Metadata { { "grpc-status-details-bin", new byte[] { 0xff, 0xff, 0xff } } };
        Assert.Null(new RpcException(new Status(StatusCode.Internal, "bad"), garbage).GetReason());
    }

    [Theory]
    [InlineData("unix:/run/p.sock", "/run/p.sock")]
    [InlineData("unix:///run/p.sock", "/run/p.sock")]
    public void Endpoints_parse(string text, string path)
    {
        var endpoint = ProviderEndpoint.Parse(text);
        Assert.Equal(path, endpoint.SocketPath);
        Assert.Equal(path + ".fds", endpoint.SidebandPath);
    }

    [Theory]
    [InlineData("tcp://127.0.0.1:5000")]
    [InlineData("unix:relative.sock")]
    [InlineData("/run/p.sock")]
    public void Endpoints_that_are_not_absolute_unix_paths_are_refused(string text) =>
        Assert.Throws<FormatException>(() => ProviderEndpoint.Parse(text));

    [Fact]
    public void Endpoints_too_long_for_sockaddr_un_are_refused()
    {
        var error = Assert.Throws<FormatException>(() => ProviderEndpoint.Parse("unix:/" + new string('x', 110)));
        Assert.Contains("too long", error.Message, StringComparison.Ordinal);
    }
}
