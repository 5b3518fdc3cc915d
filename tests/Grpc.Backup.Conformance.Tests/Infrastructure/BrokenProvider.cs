using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Provider;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Conformance.Tests.Infrastructure;

/// <summary>
/// A provider built with the SDK, in the test process, on real sockets, that breaks the contract in two exact ways:
/// JobCleanup of an unknown job answers NOT_FOUND (the contract says OK), and a repeated BackupInit returns a new
/// archive name (the contract says the same one). Everything else it does not implement answers UNIMPLEMENTED.
/// </summary>
internal sealed class BrokenProvider : IAsyncDisposable
{
    private readonly TempDirectory _directory;
    private readonly WebApplication _app;

    private BrokenProvider(TempDirectory directory, WebApplication app, ProviderEndpoint endpoint)
    {
        _directory = directory;
        _app = app;
        Endpoint = endpoint;
    }

    public ProviderEndpoint Endpoint { get; }

    public static async Task<BrokenProvider> StartAsync()
    {
        var directory = new TempDirectory();
        var endpoint = ProviderEndpoint.Parse("unix:" + directory.File("p.sock"));
        var builder = ProviderHost.CreateBuilder(["--listen", endpoint.ToString()]);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        app.MapBackupProvider();
        app.MapGrpcService<BrokenIdentity>();
        app.MapGrpcService<BrokenBackup>();
        await app.StartAsync();
        return new BrokenProvider(directory, app, endpoint);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _directory.Dispose();
    }

    internal sealed class BrokenIdentity : Identity.IdentityBase
    {
        public override Task<GetProviderInfoResponse> GetProviderInfo(GetProviderInfoRequest request, ServerCallContext context) =>
            Task.FromResult(new GetProviderInfoResponse
            {
                Name = "org.example.broken",
                VendorVersion = "0.0.1",
                ProtocolMajors = { 1 },
                Capabilities = new Capabilities { VmBackupMechanisms = { VmBackupMechanism.Nbd } },
            });

        public override Task<ProbeResponse> Probe(ProbeRequest request, ServerCallContext context) =>
            Task.FromResult(new ProbeResponse { State = ProbeResponse.Types.State.Ready });
    }

    internal sealed class BrokenBackup : Protocol.V1.Backup.BackupBase
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _jobs = new(StringComparer.Ordinal);

        public override Task<JobInitResponse> JobInit(JobInitRequest request, ServerCallContext context)
        {
            if (request.JobId.Length == 0)
            {
                throw ProviderErrors.Create(StatusCode.InvalidArgument, "job_id is required");
            }
            _jobs[request.JobId] = true;
            return Task.FromResult(new JobInitResponse());
        }

        // Wrong: an unknown job_id must answer OK.
        public override Task<JobCleanupResponse> JobCleanup(JobCleanupRequest request, ServerCallContext context) =>
            _jobs.TryRemove(request.JobId, out _)
                ? Task.FromResult(new JobCleanupResponse())
                : throw ProviderErrors.Create(ErrorReason.UnknownOperation, "no such job");

        // Wrong: a repeat with the same backup_id must return the same name.
        public override Task<BackupInitResponse> BackupInit(BackupInitRequest request, ServerCallContext context) =>
            Task.FromResult(new BackupInitResponse { ArchiveName = $"{request.GuestId}/{Guid.NewGuid():N}" });
    }
}
