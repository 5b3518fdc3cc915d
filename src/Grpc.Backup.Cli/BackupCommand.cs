using System.CommandLine;
using System.Text.Json;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Grpc.Backup.Protocol.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cli;

/// <summary><c>grpc-backup backup</c>: one job that backs up guests from the inventory to one provider.</summary>
internal static class BackupCommand
{
    public static Command Create()
    {
        var endpoint = CommonOptions.Endpoint();
        var json = CommonOptions.Json();
        var bwlimit = CommonOptions.BandwidthLimit();
        var inventory = new Option<string>("--inventory") { Description = "The directory of guest config files (ID.conf)", Required = true };
        var guests = new Option<string[]>("--guest") { Description = "Guest ids to back up", Required = true, AllowMultipleArgumentsPerToken = true };
        var fleecing = new Option<string>("--fleecing-dir") { Description = "Where fleecing images go", Required = true };
        var storage = new Option<string>("--storage") { Description = "The storage id, which names the guests' dirty bitmaps", DefaultValueFactory = _ => "default" };
        var mode = new Option<ContainerBackupMode>("--ct-mode") { Description = "How containers are held still: Stop, Suspend or Snapshot", DefaultValueFactory = _ => ContainerBackupMode.Stop };
        var exclude = new Option<string[]>("--exclude-path") { Description = "vzdump exclusion patterns for containers ('/' anchors at the root)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("backup", "Back up guests (VMs and containers) through a provider (one job: JobInit, each guest, JobCleanup)")
        {
            endpoint, inventory, guests, fleecing, storage, mode, exclude, bwlimit, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            var inv = GuestInventory.Load(result.GetValue(inventory)!);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            string jobId = Guid.NewGuid().ToString();
            await connection.Backup.JobInitAsync(new JobInitRequest { JobId = jobId, StartTime = Timestamp.FromDateTime(DateTime.UtcNow) },
                cancellationToken: cancellationToken);
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
                            StorageId = result.GetValue(storage)!,
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
            catch
            {
                success = false;
                throw;
            }
            finally
            {
                await connection.Backup.JobCleanupAsync(new JobCleanupRequest { JobId = jobId, Success = success }, cancellationToken: CancellationToken.None);
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
