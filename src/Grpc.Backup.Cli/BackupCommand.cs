using System.CommandLine;
using System.Text.Json;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Management.V1;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cli;

/// <summary>
/// <c>grpc-backup backup</c>: through the backup service, a configured job (<c>--job</c>) or guests to a storage
/// (<c>--guest --storage</c>), followed live; or, with <c>--endpoint</c>, directly against one provider without the
/// service (one job: JobInit, each guest, JobCleanup).
/// </summary>
internal static class BackupCommand
{
    public static Command Create()
    {
        var endpoint = CommonOptions.Endpoint();
        endpoint.Required = false;
        endpoint.Description = "Back up directly through this provider socket, without the service (needs --inventory and --fleecing-dir)";
        var socket = ServiceOptions.Socket();
        var noWait = ServiceOptions.NoWait();
        var job = new Option<string>("--job") { Description = "Run this configured job now (run-now)" };
        var priority = new Option<uint>("--priority") { Description = "0-9, lower first when backup slots are contended", DefaultValueFactory = _ => 5 };
        var json = CommonOptions.Json();
        var bwlimit = CommonOptions.BandwidthLimit();
        var inventory = new Option<string>("--inventory") { Description = "Direct mode: the directory of guest config files (ID.conf)" };
        var guests = new Option<string[]>("--guest") { Description = "Guest ids to back up", AllowMultipleArgumentsPerToken = true };
        var fleecing = new Option<string>("--fleecing-dir") { Description = "Direct mode: where fleecing images go" };
        var storage = new Option<string>("--storage") { Description = "The storage (a configured one; in direct mode the id that names the guests' dirty bitmaps)" };
        var mode = new Option<ContainerBackupMode>("--ct-mode") { Description = "Direct mode: how containers are held still: Stop, Suspend or Snapshot", DefaultValueFactory = _ => ContainerBackupMode.Stop };
        var lockDir = new Option<string>("--lock-dir")
        {
            Description = "Direct mode: the per-guest lock directory, shared with grpc-backupd (--lock-dir there); a guest another process is backing up is refused",
            DefaultValueFactory = _ => GuestLock.DefaultDirectory,
        };
        var inactivity = new Option<uint>("--provider-inactivity-timeout")
        {
            Description = "Direct mode: seconds the provider may report no progress in a backup stream before the backup is cancelled (0: no limit)",
            DefaultValueFactory = _ => 300,
        };
        var reserve = new Option<ulong>("--fleecing-reserve")
        {
            Description = "Direct mode: bytes the fleecing filesystem must keep free; below that a running VM's backup aborts (0: off)",
            DefaultValueFactory = _ => 256UL << 20,
        };
        var exclude = new Option<string[]>("--exclude-path") { Description = "Direct mode: vzdump exclusion patterns for containers ('/' anchors at the root)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("backup", "Back up now: a job (--job NAME) or guests (--guest ID --storage NAME) through the backup service")
        {
            job, guests, storage, priority, bwlimit, socket, noWait, json, endpoint, inventory, fleecing, mode, exclude, lockDir, inactivity, reserve,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (result.GetValue(endpoint) is null)
            {
                return await ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
                {
                    StartTaskResponse started;
                    if (result.GetValue(job) is { } jobName)
                    {
                        started = await client.Management.RunJobAsync(new RunJobRequest { Job = jobName }, cancellationToken: cancellationToken);
                    }
                    else if (result.GetValue(guests) is { Length: > 0 } ids && result.GetValue(storage) is { } storageName)
                    {
                        var request = new BackupGuestsRequest { Storage = storageName, BandwidthLimit = result.GetValue(bwlimit), Priority = result.GetValue(priority) };
                        request.GuestIds.AddRange(ids);
                        started = await client.Management.BackupGuestsAsync(request, cancellationToken: cancellationToken);
                    }
                    else
                    {
                        await Console.Error.WriteLineAsync("grpc-backup: give --job NAME, or --guest ID and --storage NAME");
                        return ExitCodes.Usage;
                    }
                    if (result.GetValue(noWait))
                    {
                        Console.WriteLine(started.TaskId);
                        return ExitCodes.Success;
                    }
                    return await TaskFollower.FollowAsync(client, started.TaskId, result.GetValue(json), cancellationToken);
                });
            }
            if (result.GetValue(inventory) is null || result.GetValue(guests) is not { Length: > 0 } || result.GetValue(fleecing) is null)
            {
                await Console.Error.WriteLineAsync("grpc-backup: direct mode (--endpoint) needs --inventory, --guest and --fleecing-dir");
                return ExitCodes.Usage;
            }
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            var inv = GuestInventory.Load(result.GetValue(inventory)!);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            // JobCleanup follows on every path, also when JobInit fails.
            await using JobSession session = await JobSession.StartAsync(connection, Guid.NewGuid().ToString(), null,
                m => Console.Error.WriteLine($"grpc-backup: warning: {m}"), cancellationToken);
            string jobId = session.JobId;
            var results = new List<object>();
            bool success = true;
            try
            {
                string runtime = Directory.CreateTempSubdirectory("grpc-backup-").FullName;
                try
                {
                    var runner = new VmBackupRunner(connection, loggers.CreateLogger<VmBackupRunner>());
                    foreach (string id in result.GetValue(guests)!)
                    {
                        if (inv.Containers.TryGetValue(id, out ContainerGuest? container))
                        {
                            var ct = await new ContainerBackupRunner(connection, loggers.CreateLogger<ContainerBackupRunner>()).BackupAsync(jobId, container,
                                new ContainerBackupRunOptions
                                {
                                    RuntimeDirectory = runtime,
                                    LockDirectory = result.GetValue(lockDir),
                                    ProviderInactivityTimeout = TimeSpan.FromSeconds(result.GetValue(inactivity)),
                                    Mode = result.GetValue(mode),
                                    ExcludePatterns = result.GetValue(exclude) ?? [],
                                    BandwidthLimit = result.GetValue(bwlimit),
                                }, cancellationToken);
                            results.Add(new { guest = id, archive = ct.ArchiveName, mechanism = ct.Mechanism.ToString(), archiveSize = ct.Stats.ArchiveSizeBytes, warnings = ct.Warnings });
                            if (!result.GetValue(json))
                            {
                                Console.WriteLine($"{id}: {ct.ArchiveName} (container, {ct.Mechanism}, {ct.Stats.ArchiveSizeBytes} bytes stored, {ct.Warnings.Count} warnings)");
                            }
                            continue;
                        }
                        VmGuest guest = inv.Vms.TryGetValue(id, out var g) ? g : throw new ArgumentException($"guest {id} is not in the inventory");
                        var backup = await runner.BackupAsync(jobId, guest, new VmBackupOptions
                        {
                            FleecingDirectory = result.GetValue(fleecing)!,
                            RuntimeDirectory = runtime,
                            LockDirectory = result.GetValue(lockDir),
                            ProviderInactivityTimeout = TimeSpan.FromSeconds(result.GetValue(inactivity)),
                            FleecingReserve = result.GetValue(reserve),
                            StorageId = result.GetValue(storage) ?? "default",
                            BandwidthLimit = result.GetValue(bwlimit),
                        }, cancellationToken);
                        results.Add(new
                        {
                            guest = id,
                            archive = backup.ArchiveName,
                            consistency = backup.Consistency.ToString(),
                            archiveSize = backup.Stats.ArchiveSizeBytes,
                            volumes = backup.Volumes.Select(v => new { device = v.DeviceName, mode = v.BitmapMode.ToString(), bytesRead = v.BytesRead, bytesStored = v.BytesStored }),
                        });
                        if (!result.GetValue(json))
                        {
                            Console.WriteLine($"{id}: {backup.ArchiveName} ({backup.Consistency}, {backup.Stats.ArchiveSizeBytes} bytes stored; " +
                                string.Join(", ", backup.Volumes.Select(v => $"{v.DeviceName} {v.BitmapMode} read {v.BytesRead}")) + ")");
                        }
                    }
                }
                finally
                {
                    Directory.Delete(runtime, recursive: true);
                }
            }
            catch (GuestLockedException e)
            {
                success = false;
                await Console.Error.WriteLineAsync($"grpc-backup: {e.Message}");
                return ExitCodes.AlreadyRunning;
            }
            catch
            {
                success = false;
                throw;
            }
            finally
            {
                await session.EndAsync(success, success ? "" : "a guest's backup failed");
            }
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(results));
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
