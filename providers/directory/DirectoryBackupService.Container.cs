using Grpc.Backup.Provider;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Providers.Directory.Internal;
using Grpc.Core;

namespace Grpc.Backup.Providers.Directory;

internal sealed partial class DirectoryBackupService
{
    public override Task<BackupContainerPrepareResponse> BackupContainerPrepare(BackupContainerPrepareRequest request, ServerCallContext context)
    {
        BackupSession session = FindContainer(request.BackupId);
        if (request.Mechanism != options.ContainerMechanism)
        {
            throw ProviderErrors.Create(ErrorReason.MechanismNotSupported,
                $"backup '{session.BackupId}' was offered {options.ContainerMechanism}, not {request.Mechanism}");
        }
        // Nothing to prepare: our worker sends its stream over the sideband connection the host gives it, so it needs no
        // file of ours and no directory it could write.
        return Task.FromResult(new BackupContainerPrepareResponse());
    }

    public override async Task BackupContainer(BackupContainerRequest request, IServerStreamWriter<BackupContainerEvent> responseStream,
        ServerCallContext context)
    {
        BackupSession session = FindContainer(request.BackupId);
        bool expected = options.ContainerMechanism == ContainerBackupMechanism.Directory
            ? request.SourceCase == BackupContainerRequest.SourceOneofCase.WorkerToken
            : request.SourceCase == BackupContainerRequest.SourceOneofCase.TarStream;
        if (!expected)
        {
            throw ContractErrors.InvalidArgument($"this provider answered mechanism {options.ContainerMechanism}; the request carries {request.SourceCase}");
        }
        await BackupDataCall.RunAsync(session, "BackupContainer", token => containerBackup.RunAsync(session, request, responseStream, token),
            context.CancellationToken);
    }

    private BackupGetMechanismResponse ContainerMechanism()
    {
        var response = new BackupGetMechanismResponse { Container = options.ContainerMechanism };
        if (options.ContainerMechanism == ContainerBackupMechanism.Directory)
        {
            var worker = new Protocol.V1.ContainerWorker();
            if (RuntimeFeature.IsDynamicCodeSupported)
            {
                // Run through the dotnet host, which others may execute; our build output need only be readable.
                string dotnet = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", "dotnet"));
                string assembly = Path.Combine(AppContext.BaseDirectory, typeof(DirectoryBackupService).Assembly.GetName().Name + ".dll");
                worker.Argv.AddRange([dotnet, assembly, ContainerWorkerMain.Command]);
            }
            else
            {
                // NativeAOT (the installed provider): the program is its own executable.
                worker.Argv.AddRange([Environment.ProcessPath!, ContainerWorkerMain.Command]);
            }
            response.ContainerWorker = worker;
        }
        return response;
    }

    private BackupSession FindContainer(string backupId)
    {
        BackupSession session = Find(backupId);
        return session.GuestType == GuestType.Container
            ? session
            : throw ProviderErrors.Create(ErrorReason.MechanismNotSupported, $"backup '{backupId}' is not a container backup");
    }
}
