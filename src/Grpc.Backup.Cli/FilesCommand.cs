using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cli;

/// <summary>
/// <c>grpc-backup files ls|get</c>: single files from a backup without restoring all of it (direct mode). A container
/// archive is read from the provider's ordinary restore stream; a VM archive's disks are read through the host's NBD
/// guard by a libguestfs appliance (<see cref="VmFileBrowser"/>), booted once per command: only a long-lived process
/// could keep it warm between commands (see CONTRIBUTING.md, "Decisions"). Names are the guest's data: they are
/// printed made safe for a terminal.
/// </summary>
internal static class FilesCommand
{
    public static Command Create() => new("files", "List or extract single files of a container or VM backup, without restoring all of it")
    {
        List(),
        Get(),
    };

    private static Command List()
    {
        var endpoint = CommonOptions.Endpoint();
        var json = CommonOptions.Json();
        var archive = new Argument<string>("ARCHIVE") { Description = "The archive name, as listed by the provider" };
        var path = new Argument<string>("PATH") { Description = "A directory (or file) in the archive; the root by default", DefaultValueFactory = _ => "/" };
        var disk = Disk();
        var command = new Command("ls", "List a directory of a container or VM archive: type and mode, owner, size, mtime, name, link target")
        {
            archive, path, disk, endpoint, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            string name = result.GetValue(archive)!;
            IReadOnlyList<ArchiveEntry> entries;
            if (await IsVmAsync(connection, name, cancellationToken))
            {
                await using VmFileBrowser browser = await VmFileBrowser.OpenAsync([new VmFileSource(connection, name)], loggers.CreateLogger<VmFileBrowser>(),
                    cancellationToken);
                entries = await browser.ListAsync(name, result.GetValue(disk), result.GetValue(path)!, cancellationToken);
            }
            else
            {
                entries = await new ContainerRestoreRunner(connection, loggers.CreateLogger<ContainerRestoreRunner>())
                    .ListFilesAsync(name, result.GetValue(path)!, cancellationToken);
            }
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(entries.Select(e => new
                {
                    path = e.Path,
                    type = e.Kind.ToString().ToLowerInvariant(),
                    size = e.Size,
                    mode = Convert.ToString((int)e.Mode, 8),
                    uid = e.Uid,
                    gid = e.Gid,
                    user = e.UserName,
                    group = e.GroupName,
                    mtime = e.ModificationTime.ToUnixTimeSeconds(),
                    link = e.LinkTarget,
                })));
                return ExitCodes.Success;
            }
            foreach (ArchiveEntry entry in entries)
            {
                Console.WriteLine(Line(entry));
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Get()
    {
        var endpoint = CommonOptions.Endpoint();
        var json = CommonOptions.Json();
        var archive = new Argument<string>("ARCHIVE") { Description = "The archive name, as listed by the provider" };
        var paths = new Argument<string[]>("PATH") { Description = "Files or directories in the archive (a directory brings its whole tree)", Arity = ArgumentArity.OneOrMore };
        var to = new Option<string>("--to") { Description = "Extract into this new directory (it must not exist; its parent must be root's, mode 0700), in the container's user namespace" };
        var tar = new Option<string>("--tar") { Description = "'-': write a tar of the selection to stdout instead" };
        var idmap = new Option<string[]>("--idmap")
        {
            Description = "With --to: the container's id map lines (default 'u 0 100000 65536' 'g 0 100000 65536')",
            AllowMultipleArgumentsPerToken = true,
        };
        var keepSetId = new Option<bool>("--keep-setid") { Description = "Keep setuid/setgid bits (cleared by default)" };
        var disk = Disk();
        var xattrs = new Option<bool>("--xattrs") { Description = "VM archives: bring the directories' extended attributes too" };
        var command = new Command("get", "Extract files and trees of a container or VM archive, checked as a restore checks them")
        {
            archive, paths, to, tar, idmap, keepSetId, disk, xattrs, endpoint, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            string? directory = result.GetValue(to);
            string? tarOutput = result.GetValue(tar);
            if ((directory is null) == (tarOutput is null) || (tarOutput is not null && tarOutput != "-"))
            {
                await Console.Error.WriteLineAsync("grpc-backup: give either --to DIR or --tar - (see 'grpc-backup files get --help')");
                return ExitCodes.Usage;
            }
            var validation = new TarValidationOptions { SetIdBits = result.GetValue(keepSetId) ? SetIdBitsPolicy.Keep : SetIdBitsPolicy.Strip };
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            string name = result.GetValue(archive)!;
            VmFileBrowser? browser = await IsVmAsync(connection, name, cancellationToken)
                ? await VmFileBrowser.OpenAsync([new VmFileSource(connection, name)], loggers.CreateLogger<VmFileBrowser>(), cancellationToken)
                : null;
            await using var _ = browser;
            var runner = new ContainerRestoreRunner(connection, loggers.CreateLogger<ContainerRestoreRunner>());
            if (tarOutput is not null)
            {
                await using Stream stdout = Console.OpenStandardOutput();
                TarValidationReport report = browser is not null
                    ? await browser.WriteTarAsync(name, result.GetValue(disk), result.GetValue(paths)!, stdout, validation, result.GetValue(xattrs), cancellationToken)
                    : await runner.WriteFilesTarAsync(name, result.GetValue(paths)!, stdout, validation, cancellationToken);
                await WarnAsync(report.Warnings);
                return ExitCodes.Success;
            }
            string[] lines = result.GetValue(idmap) ?? [];
            var options = new ContainerRestoreOptions
            {
                IdMap = lines.Length == 0 ? IdMap.CreateDefault() : IdMap.Parse(lines),
                TargetDirectory = directory!,
                Paths = result.GetValue(paths)!,
                Validation = validation,
            };
            ContainerRestoreResult extracted = browser is not null
                ? await browser.ExtractAsync(name, result.GetValue(disk), options, result.GetValue(xattrs), cancellationToken)
                : await runner.ExtractFilesAsync(name, options, cancellationToken);
            await WarnAsync(extracted.Warnings);
            Console.WriteLine(result.GetValue(json)
                ? JsonSerializer.Serialize(new { directory, warnings = extracted.Warnings })
                : $"extracted into {directory} ({extracted.Warnings.Count} warnings)");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Option<string> Disk() => new("--disk")
    {
        Description = "VM archives: the disk (device name, as the archive lists it); the first one by default. With several file systems on it, "
            + "a path's first component names one (partN, lvm-VG-LV)",
    };

    /// <summary>Which kind of archive it is, asked as a restore asks (<c>RestoreGetMechanism</c>).</summary>
    private static async Task<bool> IsVmAsync(ProviderConnection connection, string archive, CancellationToken cancellationToken) =>
        (await connection.Restore.RestoreGetMechanismAsync(new Protocol.V1.RestoreGetMechanismRequest { ArchiveName = archive },
            cancellationToken: cancellationToken)).GuestType == Protocol.V1.GuestType.Vm;

    private static async Task WarnAsync(IReadOnlyList<string> warnings)
    {
        foreach (string warning in warnings)
        {
            await Console.Error.WriteLineAsync("grpc-backup: warning: " + ProviderText.Sanitize(warning));
        }
    }

    /// <summary>One entry as <c>tar -tv</c> shows it: mode, owner, size, mtime (UTC), name, link target.</summary>
    private static string Line(ArchiveEntry entry)
    {
        string owner = entry.UserName is not null && entry.GroupName is not null
            ? $"{entry.UserName}/{entry.GroupName}"
            : $"{entry.Uid}/{entry.Gid}";
        string name = entry.Path.Length == 0 ? "." : entry.Path;
        string link = entry.Kind switch
        {
            ArchiveEntryKind.Symlink => " -> " + entry.LinkTarget,
            ArchiveEntryKind.HardLink => " link to " + entry.LinkTarget,
            _ => "",
        };
        return ProviderText.Sanitize(string.Create(CultureInfo.InvariantCulture,
            $"{ModeString(entry)} {owner} {entry.Size,12} {entry.ModificationTime.UtcDateTime:yyyy-MM-dd HH:mm:ss} {name}{(entry.Kind == ArchiveEntryKind.Directory ? "/" : "")}{link}"));
    }

    private static string ModeString(ArchiveEntry entry)
    {
        var text = new StringBuilder(10);
        text.Append(entry.Kind switch
        {
            ArchiveEntryKind.Directory => 'd',
            ArchiveEntryKind.Symlink => 'l',
            ArchiveEntryKind.HardLink => 'h',
            ArchiveEntryKind.Fifo => 'p',
            ArchiveEntryKind.CharacterDevice => 'c',
            ArchiveEntryKind.BlockDevice => 'b',
            _ => '-',
        });
        int mode = (int)entry.Mode;
        for (int shift = 6; shift >= 0; shift -= 3)
        {
            int bits = (mode >> shift) & 7;
            bool special = (mode & (0b1_000_000_000 << (shift / 3))) != 0;
            char execute = (bits & 1) != 0 ? 'x' : '-';
            if (special)
            {
                execute = shift == 0 ? ((bits & 1) != 0 ? 't' : 'T') : ((bits & 1) != 0 ? 's' : 'S');
            }
            text.Append((bits & 4) != 0 ? 'r' : '-').Append((bits & 2) != 0 ? 'w' : '-').Append(execute);
        }
        return text.ToString();
    }
}
