using System.IO.Pipes;
using System.Net.Sockets;
using System.Text;
using Google.Protobuf;
using Grpc.Backup.Conformance.Internal;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Grpc.Backup.Transport;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;
using TransportFdKind = Grpc.Backup.Transport.FdKind;

namespace Grpc.Backup.Conformance;

// The fd sideband (protos/README "File descriptors"): claims by (token, index), each fd once, kinds checked, strict
// receiving (reused tokens, fd count mismatches rejected; a bad packet closes the connection), and a provider that
// keeps serving after all of it. BackupHandleLogFile of the probe backup is the call that claims.
public sealed partial class ConformanceSuite
{
    private async Task RunFdChecksAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            return;
        }
        var backup = Connection.Backup;
        string logPath = Path.Combine(_scratch, "probe-task.log");
        await File.WriteAllTextAsync(logPath, "conformance: the task log of a probe backup\n", cancellationToken);
        FdRef? claimed = null;

        await CheckAsync("fd.log-handoff-idempotent", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            for (int i = 0; i < 2; i++)
            {
                using SafeFileHandle log = File.OpenHandle(logPath);
                FdRef fd = (await Connection.SendFdsAsync([new FdToSend(log, TransportFdKind.File)], ct))[0];
                await Expect.OkAsync(i == 0 ? "BackupHandleLogFile" : "BackupHandleLogFile (repeat, new transfer)",
                    () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = fd }, cancellationToken: ct));
                claimed = fd;
            }
        }, cancellationToken);

        await CheckAsync("fd.already-claimed", async ct =>
        {
            RequireState(claimed, "fd.log-handoff-idempotent");
            await Expect.StatusAsync("BackupHandleLogFile naming an fd it already claimed",
                () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = claimed }, cancellationToken: ct),
                StatusCode.InvalidArgument, ErrorReason.FdAlreadyClaimed);
        }, cancellationToken);

        await CheckAsync("fd.unknown-token", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            FdRef never = FdToken.NewRandom().ToFdRef(0, TransportFdKind.File);
            await Expect.StatusAsync("BackupHandleLogFile naming a transfer never sent",
                () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = never }, cancellationToken: ct),
                StatusCode.InvalidArgument, ErrorReason.FdTransferUnknown);
        }, cancellationToken);

        await CheckAsync("fd.index-out-of-range", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            using SafeFileHandle log = File.OpenHandle(logPath);
            FdRef fd = (await Connection.SendFdsAsync([new FdToSend(log, TransportFdKind.File)], ct))[0];
            fd.Index = 3;
            // types.proto: FD_ALREADY_CLAIMED is also "an index out of range".
            await Expect.StatusAsync("BackupHandleLogFile naming index 3 of a one-fd transfer",
                () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = fd }, cancellationToken: ct),
                StatusCode.InvalidArgument, ErrorReason.FdAlreadyClaimed);
        }, cancellationToken);

        await CheckAsync("fd.wrong-kind", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            using var pipe = new AnonymousPipeServerStream(PipeDirection.Out);
            FdRef fd = (await Connection.SendFdsAsync([new FdToSend(pipe.ClientSafePipeHandle, TransportFdKind.File)], ct))[0];
            await Expect.StatusAsync("BackupHandleLogFile with a pipe declared FD_KIND_FILE",
                () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = fd }, cancellationToken: ct),
                StatusCode.InvalidArgument, ErrorReason.FdKindMismatch);
        }, cancellationToken);

        await CheckAsync("fd.reused-token", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            using RawSideband raw = await RawSideband.ConnectAsync(_options.Endpoint.SidebandPath, ct);
            FdToken token = FdToken.NewRandom();
            FdRef fd = token.ToFdRef(0, TransportFdKind.File);
            using (SafeFileHandle log = File.OpenHandle(logPath))
            {
                raw.SendTransfer(token, [TransportFdKind.File], log);
                await Expect.OkAsync("BackupHandleLogFile of a raw transfer",
                    () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = fd }, cancellationToken: ct));
            }
            using (SafeFileHandle planted = File.OpenHandle(logPath))
            {
                // "A token already seen on this receiver (claimed, expired, rejected or pending): the transfer is rejected."
                raw.SendTransfer(token, [TransportFdKind.File], planted);
                await Expect.StatusAsync("BackupHandleLogFile naming a token sent a second time",
                    () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = fd }, cancellationToken: ct),
                    StatusCode.InvalidArgument, ErrorReason.FdTransferRejected, ErrorReason.FdAlreadyClaimed);
            }
        }, cancellationToken);

        await CheckAsync("fd.count-mismatch", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            using RawSideband raw = await RawSideband.ConnectAsync(_options.Endpoint.SidebandPath, ct);
            FdToken token = FdToken.NewRandom();
            using SafeFileHandle first = File.OpenHandle(logPath);
            using SafeFileHandle extra = File.OpenHandle(logPath);
            // The header counts one fd; two arrive.
            raw.SendTransfer(token, [TransportFdKind.File], first, extra);
            await Expect.StatusAsync("BackupHandleLogFile naming a transfer with more fds than its header counts",
                () => backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = token.ToFdRef(0, TransportFdKind.File) }, cancellationToken: ct),
                StatusCode.InvalidArgument, ErrorReason.FdTransferRejected);
        }, cancellationToken);

        await CheckAsync("fd.bad-packet-closes-connection", async ct =>
        {
            Expect.Requires(Capabilities.VmBackupMechanisms.Count + Capabilities.ContainerBackupMechanisms.Count > 0, "no backup mechanism advertised");
            using RawSideband raw = await RawSideband.ConnectAsync(_options.Endpoint.SidebandPath, ct);
            byte[] packet = new byte[24];
            Encoding.ASCII.GetBytes("NOPE").CopyTo(packet, 0);
            packet[4] = 1;
            packet[5] = 2;
            using SafeFileHandle log = File.OpenHandle(logPath);
            raw.Send(packet, log);
            Expect.That(await raw.ClosedByPeerAsync(TimeSpan.FromSeconds(5), ct), "the provider kept the sideband connection open after a packet with a bad magic");
        }, cancellationToken);

        await CheckAsync("fd.dead-nbd-socket", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            await DeadNbdSocketAsync(ct);
        }, cancellationToken);

        await CheckAsync("fd.provider-keeps-serving", async ct =>
        {
            RequireState(_probeBackupId, "backup.init-idempotent");
            await Expect.OkAsync("GetProviderInfo", () => Connection.Identity.GetProviderInfoAsync(new GetProviderInfoRequest(), cancellationToken: ct));
            await using var fresh = await Host.ProviderConnection.ConnectAsync(_options.Endpoint, ConnectionOptions, cancellationToken: ct);
            using SafeFileHandle log = File.OpenHandle(logPath);
            FdRef fd = (await fresh.SendFdsAsync([new FdToSend(log, TransportFdKind.File)], ct))[0];
            await Expect.OkAsync("BackupHandleLogFile on a new connection after the fd checks",
                () => fresh.Backup.BackupHandleLogFileAsync(new BackupHandleLogFileRequest { BackupId = _probeBackupId, LogFile = fd }, cancellationToken: ct));
        }, cancellationToken);

        await FinishProbeBackupAsync(cancellationToken);
    }

    /// <summary>
    /// BackupVm with an NBD socket whose server end is already closed: the provider must fail the call (not hang, not
    /// crash), and BackupCleanup(success=false) must then succeed.
    /// </summary>
    private async Task DeadNbdSocketAsync(CancellationToken cancellationToken)
    {
        Expect.Requires(Capabilities.VmBackupMechanisms.Contains(VmBackupMechanism.Nbd), "VM mechanism NBD not advertised");
        var backup = Connection.Backup;
        string backupId = Guid.NewGuid().ToString();
        await Expect.OkAsync("BackupInit", () => backup.BackupInitAsync(ProbeInit(backupId), cancellationToken: cancellationToken));
        try
        {
            var mechanism = await Expect.OkAsync("BackupGetMechanism",
                () => backup.BackupGetMechanismAsync(new BackupGetMechanismRequest { BackupId = backupId, GuestType = GuestType.Vm }, cancellationToken: cancellationToken));
            Expect.Requires(mechanism.Vm == VmBackupMechanism.Nbd, $"the provider chooses {mechanism.Vm} for VMs");
            await Expect.OkAsync("BackupVmQueryIncremental", () => backup.BackupVmQueryIncrementalAsync(new BackupVmQueryIncrementalRequest
            {
                BackupId = backupId,
                Volumes = { new VolumeSize { DeviceName = "drive-scsi0", SizeBytes = 1 << 20 } },
            }, cancellationToken: cancellationToken));

            string socketPath = Path.Combine(_scratch, "dead-nbd.sock");
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(1);
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await client.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            (await listener.AcceptAsync(cancellationToken)).Dispose();
            File.Delete(socketPath);
            FdRef fd = (await Connection.SendFdsAsync([new FdToSend(client.SafeHandle, TransportFdKind.NbdSocket)], cancellationToken))[0];

            using var call = backup.BackupVm(cancellationToken: cancellationToken);
            await call.RequestStream.WriteAsync(new BackupVmRequest
            {
                Start = new BackupVmStart
                {
                    BackupId = backupId,
                    GuestConfig = ByteString.CopyFromUtf8("type: vm\n"),
                    Consistency = Consistency.Crash,
                    Volumes =
                    {
                        new VmVolume
                        {
                            DeviceName = "drive-scsi0",
                            SizeBytes = 1 << 20,
                            BitmapMode = BitmapMode.None,
                            Nbd = new NbdVolumeSource { Socket = fd, ExportName = "drive-scsi0" },
                        },
                    },
                },
            }, cancellationToken);
            await call.RequestStream.CompleteAsync();
            try
            {
                while (await call.ResponseStream.MoveNext(cancellationToken))
                {
                    Expect.That(call.ResponseStream.Current.EventCase != BackupVmEvent.EventOneofCase.VolumeCompleted,
                        "the provider reported a volume completed that it could not have read");
                }
            }
            catch (RpcException e) when (e.StatusCode is not (StatusCode.Unknown or StatusCode.Internal or StatusCode.Cancelled or StatusCode.DeadlineExceeded))
            {
                return;
            }
            catch (RpcException e)
            {
                throw new CheckFailedException($"BackupVm on a dead NBD socket: expected a documented failure (e.g. ABORTED SNAPSHOT_BROKEN), got {Expect.Describe(e)}", e);
            }
            throw new CheckFailedException("BackupVm on a dead NBD socket ended with OK");
        }
        finally
        {
            await Expect.OkAsync("BackupCleanup(success=false) after the failed BackupVm", () => backup.BackupCleanupAsync(
                new BackupCleanupRequest { JobId = _jobId, BackupId = backupId, Success = false, Error = "conformance: dead NBD socket" },
                cancellationToken: CancellationToken.None));
        }
    }
}
