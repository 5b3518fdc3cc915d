using System.CommandLine;
using System.Text.Json;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Orchestrator.Inventory;
using Grpc.Backup.Protocol;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cli;

/// <summary>
/// <c>grpc-backup restore</c>: restores a VM archive into new disk images, or (with <c>--ct-rootfs</c>) a container archive
/// into a fresh root file system extracted inside the container's user namespace; the configs come back byte-exact. Through
/// the backup service (<c>--storage</c>, VM archives) or directly from a provider (<c>--endpoint</c>). With <c>--live</c>
/// the VM runs (started by <c>--start-guest</c>) while its qcow2 disks stream in; the command returns when every disk is
/// independent of the provider (exit 0), and Ctrl-C cancels as the management API's Restore describes (exit 6).
/// </summary>
internal static class RestoreCommand
{
    public static Command Create()
    {
        var endpoint = CommonOptions.Endpoint();
        endpoint.Required = false;
        endpoint.Description = "Restore directly from this provider socket, without the service";
        var storage = new Option<string>("--storage") { Description = "The configured storage that holds the archive" };
        var socket = ServiceOptions.Socket();
        var noWait = ServiceOptions.NoWait();
        var json = CommonOptions.Json();
        var bwlimit = CommonOptions.BandwidthLimit();
        var archive = new Option<string>("--archive") { Description = "The archive name, as listed by the provider", Required = true };
        var target = new Option<string>("--target") { Description = "A new (or empty, root-only) directory for the restored disks and configs", Required = true };
        var format = new Option<string>("--format") { Description = "raw or qcow2", DefaultValueFactory = _ => "raw" };
        var rootfs = new Option<string>("--ct-rootfs") { Description = "Direct mode: restore a container archive: the new root file system (must not exist; its parent must be root's, mode 0700)" };
        var idmap = new Option<string[]>("--idmap") { Description = "Direct mode: the restored container's id map lines, e.g. 'u 0 100000 65536' 'g 0 100000 65536'", AllowMultipleArgumentsPerToken = true };
        var live = new Option<bool>("--live") { Description = "Start the VM at once on qcow2 disks that stream in while it runs (needs --start-guest)" };
        var startGuest = new Option<string>("--start-guest")
        {
            Description = "With --live: the program that starts the VM (root-owned; JSON description of the disks on stdin; prints the QMP socket path)",
        };
        var command = new Command("restore", "Restore a VM archive into new disk images, or a container archive into a new root file system")
        {
            storage, archive, target, format, bwlimit, socket, noWait, json, endpoint, rootfs, idmap, live, startGuest,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            bool isLive = result.GetValue(live);
            if (isLive != (result.GetValue(startGuest) is not null))
            {
                await Console.Error.WriteLineAsync("grpc-backup: --live and --start-guest go together (a live restore writes qcow2 disks)");
                return ExitCodes.Usage;
            }
            if (result.GetValue(endpoint) is null)
            {
                if (result.GetValue(storage) is not { } storageName)
                {
                    await Console.Error.WriteLineAsync("grpc-backup: give --storage NAME (or --endpoint for direct mode)");
                    return ExitCodes.Usage;
                }
                return await ServiceClient.RunAsync(result.GetValue(socket)!, async client =>
                {
                    var started = await client.Management.RestoreAsync(new Management.V1.RestoreRequest
                    {
                        Storage = storageName,
                        ArchiveName = result.GetValue(archive)!,
                        TargetDirectory = Path.GetFullPath(result.GetValue(target)!),
                        Format = isLive ? "qcow2" : result.GetValue(format)!,
                        BandwidthLimit = result.GetValue(bwlimit),
                        Live = isLive,
                        GuestStartProgram = isLive ? Path.GetFullPath(result.GetValue(startGuest)!) : "",
                    }, cancellationToken: cancellationToken);
                    if (result.GetValue(noWait))
                    {
                        Console.WriteLine(started.TaskId);
                        return ExitCodes.Success;
                    }
                    return await TaskFollower.FollowAsync(client, started.TaskId, result.GetValue(json), cancellationToken);
                });
            }
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            if (result.GetValue(rootfs) is { } containerRoot)
            {
                var ct = await new ContainerRestoreRunner(connection, loggers.CreateLogger<ContainerRestoreRunner>()).RestoreAsync(result.GetValue(archive)!,
                    new ContainerRestoreRunOptions
                    {
                        IdMap = Containers.IdMap.Parse(result.GetValue(idmap) ?? []),
                        TargetRootFileSystem = containerRoot,
                        ConfigDirectory = result.GetValue(target)!,
                        BandwidthLimit = result.GetValue(bwlimit),
                    }, cancellationToken);
                Console.WriteLine(result.GetValue(json)
                    ? JsonSerializer.Serialize(new { rootfs = containerRoot, warnings = ct.Extraction.Warnings })
                    : $"rootfs: {containerRoot} ({ct.Extraction.Warnings.Count} warnings)");
                return ExitCodes.Success;
            }
            if (isLive)
            {
                return await RestoreLiveAsync(connection, loggers, result.GetValue(archive)!, Path.GetFullPath(result.GetValue(target)!),
                    result.GetValue(bwlimit), new GuestStartProgram(Path.GetFullPath(result.GetValue(startGuest)!)), result.GetValue(json), cancellationToken);
            }
            var runner = new VmRestoreRunner(connection, loggers.CreateLogger<VmRestoreRunner>());
            var restored = await runner.RestoreAsync(result.GetValue(archive)!, new VmRestoreOptions
            {
                TargetDirectory = result.GetValue(target)!,
                TargetFormat = result.GetValue(format) == "qcow2" ? DiskFormat.Qcow2 : DiskFormat.Raw,
                BandwidthLimit = result.GetValue(bwlimit),
            }, cancellationToken);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new { disks = restored.Disks }));
            }
            else
            {
                foreach (var (device, path) in restored.Disks)
                {
                    Console.WriteLine($"{device}: {path}");
                }
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Direct mode's live restore: a progress line on stderr every few seconds, the disks on stdout at the end.</summary>
    private static async Task<int> RestoreLiveAsync(ProviderConnection connection, ILoggerFactory loggers, string archive, string target,
        ulong bandwidthLimit, GuestStartProgram startProgram, bool json, CancellationToken cancellationToken)
    {
        var runner = new LiveRestoreRunner(connection, loggers.CreateLogger<LiveRestoreRunner>());
        await using LiveRestoreSession session = await runner.StartAsync(archive, new LiveRestoreOptions { TargetDirectory = target, BandwidthLimit = bandwidthLimit },
            (guest, token) => startProgram.StartAsync(guest, target, token), cancellationToken);
        await session.WaitAsync(TimeSpan.FromSeconds(5), progress => Console.Error.WriteLineAsync($"grpc-backup: {progress.Describe()}"), cancellationToken);
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new { disks = session.Disks.ToDictionary(d => d.DeviceName, d => d.ImagePath) }));
        }
        else
        {
            foreach (LiveRestoreDisk disk in session.Disks)
            {
                Console.WriteLine($"{disk.DeviceName}: {disk.ImagePath}");
            }
        }
        return ExitCodes.Success;
    }
}
