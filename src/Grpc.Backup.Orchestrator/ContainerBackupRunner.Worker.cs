using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Backup.Containers;
using Grpc.Backup.Orchestrator.Internal;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol.Containers;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Grpc.Core;

namespace Grpc.Backup.Orchestrator;

public sealed partial class ContainerBackupRunner
{
    private static readonly TimeSpan WorkerExitGrace = TimeSpan.FromSeconds(60);

    /// <summary>
    /// DIRECTORY: the provider's worker runs inside the view's namespaces as the container's root, with a sideband
    /// connection the host opened (fd 3). The call and the worker are watched together: a worker that exits non-zero
    /// cancels the call, a call that fails kills the worker, and only both succeeding is a backup.
    /// </summary>
    private async Task<(IReadOnlyList<string> Warnings, FileManifest? Manifest, TimeSpan ManifestDuration)> RunWorkerAsync(BackupContainerRequest request, IReadOnlyList<string> argv,
        ContainerBackupOptions viewOptions, ContainerGuest guest, TaskLog log, TimeSpan inactivity, CancellationToken cancellationToken)
    {
        await using ContainerBackupView view = await ContainerBackupView.CreateAsync(viewOptions, cancellationToken);
        await PrepareAsync(request.BackupId, ContainerBackupMechanism.Directory, guest, view.Sources, viewOptions.BytesPerSecond, cancellationToken);
        request.Sources.AddRange(view.Sources);
        FdToken token = FdToken.NewRandom();
        request.WorkerToken = ByteString.CopyFrom(token.ToByteArray());
        var environment = ContainerWorkerEnvironment.Create(token, request.BackupId, view.Path, view.Sources, request.ExcludePatterns,
            viewOptions.BytesPerSecond);

        using var callCancel = new BackupWatchdog(inactivity, fleecingDirectory: null, fleecingReserve: 0, cancellationToken);
        var workerProblems = new List<string>();
        ContainerWorkerProcess worker;
        using (Socket sideband = await FdSidebandHandoff.ConnectAsync(provider.Endpoint.SidebandPath, cancellationToken))
        {
            // The worker gets its own copy as fd 3; the host's closes here, so the provider sees EOF when the worker ends.
            worker = ContainerWorkerProcess.Start(view, argv, environment, sideband.SafeHandle, line => log.Info($"worker: {line}"),
                line =>
                {
                    lock (workerProblems)
                    {
                        workerProblems.Add($"worker: {line}");
                    }
                });
        }
        await using (worker)
        {
            log.Info($"worker {argv[0]} started (pid {worker.ProcessId})");
            using var call = provider.Backup.BackupContainer(request, cancellationToken: callCancel.Token);
            Task events = ReadEventsAsync(call, log, callCancel);
            Task finished = await Task.WhenAny(events, worker.Completion);
            if (finished == worker.Completion)
            {
                if (await worker.Completion is int failed and not 0)
                {
                    await callCancel.CancelAsync();
                    await Observe(events);
                    throw new BackupException($"the provider's worker failed with exit status {failed}");
                }
                await events;
            }
            else
            {
                if (!events.IsCompletedSuccessfully)
                {
                    worker.Kill();
                    await worker.Completion;
                    await events;
                }
                // The provider has stored everything; a worker that then lingers is killed, not waited on forever.
                Task exited = await Task.WhenAny(worker.Completion, Task.Delay(WorkerExitGrace, cancellationToken));
                if (exited != worker.Completion)
                {
                    worker.Kill();
                    throw new BackupException($"the provider's worker did not exit within {WorkerExitGrace.TotalSeconds} s after the provider finished");
                }
                if (await worker.Completion is int failed and not 0)
                {
                    throw new BackupException($"the provider's worker failed with exit status {failed}");
                }
            }
            log.Info("worker finished");
        }
        var warnings = new List<string>(view.Warnings);
        warnings.AddRange(workerProblems);
        (FileManifest? manifest, TimeSpan manifestDuration) = viewOptions.ComputeFileManifest
            ? await view.TryComputeManifestAsync(warnings, cancellationToken)
            : (null, TimeSpan.Zero);
        warnings.AddRange(await view.CloseAsync());
        return (warnings, manifest, manifestDuration);
    }

    private static async Task Observe(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is RpcException or OperationCanceledException)
        {
        }
    }
}
