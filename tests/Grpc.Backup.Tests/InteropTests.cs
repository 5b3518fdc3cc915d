using System.Text.Json;
using Grpc.Backup.Tests.Infrastructure;

namespace Grpc.Backup.Tests;

/// <summary>A client in another language, generated from protos/ alone, talks to our provider.</summary>
public sealed class InteropTests
{
    internal const string GetProviderInfoScript = """
        import json, sys, grpc
        from backup.provider.v1 import identity_pb2, identity_pb2_grpc
        # The authority must be "localhost" (protos/README.md "Endpoints").
        channel = grpc.insecure_channel("unix:" + sys.argv[1], options=[("grpc.default_authority", "localhost")])
        try:
            info = identity_pb2_grpc.IdentityStub(channel).GetProviderInfo(identity_pb2.GetProviderInfoRequest(), timeout=10)
            print(json.dumps({"ok": True, "name": info.name, "majors": list(info.protocol_majors)}))
        except grpc.RpcError as e:
            print(json.dumps({"ok": False, "code": e.code().name}))
        """;

    [Fact]
    public async Task Python_client_generated_from_the_protos_calls_GetProviderInfo()
    {
        await using var provider = await DirectoryProviderProcess.StartAsync();

        var (exitCode, stdout, stderr) = await PythonClient.RunAsync(GetProviderInfoScript, [provider.Endpoint.SocketPath]);

        Assert.True(exitCode == 0, stderr);
        using var reply = JsonDocument.Parse(stdout);
        Assert.True(reply.RootElement.GetProperty("ok").GetBoolean(), stdout);
        Assert.Equal("org.grpcbackup.directory", reply.RootElement.GetProperty("name").GetString());
        Assert.Equal(1, reply.RootElement.GetProperty("majors")[0].GetInt32());
    }
}
